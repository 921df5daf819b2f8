from __future__ import annotations

import multiprocessing

from codesign.cost.cache import LayerCostCache
from codesign.cost.engine import CostEngine
from codesign.cost.graph import layers_from_onnx
from codesign.cost.layer_specs import gemm_layer
from codesign.cost.records import LayerCost
from codesign.cost.settings import CostOptions
from codesign.deploy.qcdq import export_qcdq
from codesign.hardware.target import load_hardware
from tests.cost.test_zigzag import FAST


def test_warm_cache_never_calls_zigzag(tiny_model, tmp, edge_tpu):
    layers = layers_from_onnx(export_qcdq(tiny_model, tmp / "net.onnx"))
    cold = CostEngine(edge_tpu, FAST, LayerCostCache(tmp / "cache.sqlite"))
    cold_costs = cold.layer_costs(layers)
    assert cold.stats.zigzag_calls == len({layer.geometry_key().__repr__() for layer in layers})
    warm = CostEngine(edge_tpu, FAST, LayerCostCache(tmp / "cache.sqlite"))
    assert warm.layer_costs(layers) == cold_costs
    assert warm.stats.zigzag_calls == 0
    other_options = CostEngine(
        edge_tpu, CostOptions(opt="energy", lpf_limit=3), LayerCostCache(tmp / "cache.sqlite")
    )
    other_options.layer_costs(layers[:1])
    assert other_options.stats.zigzag_calls == 1  # options are part of the key


def _fill_cache(args: tuple[str, int]) -> int:
    from codesign.cost.cache import LayerCostCache

    path, worker = args
    cache = LayerCostCache(path)
    target = load_hardware("edge_tpu_like")
    items = []
    for i in range(200):
        layer = gemm_layer(
            f"l{i}",
            "stage0",
            input_shape=(1, 8 + i),
            out_features=10,
            weights_constant=True,
            weight_bits=8,
            act_bits=8,
            output_bits=8,
            partial_sum_bits=16,
            operand_source="input_from_layer",
            quantized=True,
        )
        items.append((f"{worker}-{i}", layer, target.name, LayerCost(float(i), 1.0, 0.5, 0.5, 1.0, 1.0)))
    for begin in range(0, 200, 10):
        cache.put_many(items[begin : begin + 10])
    return len(cache)


def test_cache_is_safe_under_concurrent_writers(tmp):
    path = str(tmp / "shared.sqlite")
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        pool.map(_fill_cache, [(path, w) for w in range(3)])
    assert len(LayerCostCache(path)) == 600
