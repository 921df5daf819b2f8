from __future__ import annotations

import multiprocessing
from pathlib import Path

import onnx
import pytest

from codesign.cost_cache import LayerCostCache
from codesign.cost_engine import CostEngine
from codesign.errors import CodesignError
from codesign.exit_costs import expected_cost, per_exit_costs
from codesign.export import export_qcdq
from codesign.hardware import load_hardware
from codesign.layers import layers_from_onnx
from codesign.zigzag_runner import CostOptions

from .test_training_export_layers import export_float

FAST = CostOptions(opt="EDP", lpf_limit=3)


def test_per_layer_costs_equal_zigzag_on_the_whole_graph(tmp, edge_tpu):
    from zigzag.api import get_hardware_performance_zigzag

    path = export_float(tmp / "float.onnx")
    inferred = tmp / "inferred.onnx"
    onnx.save(onnx.shape_inference.infer_shapes(onnx.load(str(path))), str(inferred))
    energy, latency, _ = get_hardware_performance_zigzag(
        str(inferred),
        str(edge_tpu.accelerator_path),
        str(edge_tpu.mapping_path),
        opt=FAST.opt,
        lpf_limit=FAST.lpf_limit,
        dump_folder=str(tmp / "zigzag_out"),
        loma_show_progress_bar=False,
    )
    layers = layers_from_onnx(path)
    costs = CostEngine(edge_tpu, FAST).layer_costs(layers)
    assert sum(c.energy_pj for c in costs) == pytest.approx(energy, rel=1e-6)
    assert sum(c.latency_cycles for c in costs) == pytest.approx(latency, rel=1e-6)


def test_per_exit_costs_are_the_hand_summed_layer_costs(tiny_model, tmp, edge_tpu):
    layers = layers_from_onnx(export_qcdq(tiny_model, tmp / "net.onnx"))
    costs = CostEngine(edge_tpu, FAST).layer_costs(layers)
    energy = {layer.segment: c.energy_pj for layer, c in zip(layers, costs, strict=True)}
    latency = {layer.segment: c.latency_cycles for layer, c in zip(layers, costs, strict=True)}
    exits = per_exit_costs(layers, costs, (0, 1, 2))
    assert exits[0].energy_pj == pytest.approx(energy["stage0"] + energy["head0"])
    assert exits[1].energy_pj == pytest.approx(
        energy["stage0"] + energy["head0"] + energy["stage1"] + energy["head1"]
    )
    assert exits[2].latency_cycles == pytest.approx(sum(latency.values()))
    # exit 0 switched off: its head is neither evaluated nor paid for
    without_head0 = [(layer, c) for layer, c in zip(layers, costs, strict=True) if layer.segment != "head0"]
    skip = per_exit_costs([lc[0] for lc in without_head0], [lc[1] for lc in without_head0], (1, 2))
    assert skip[0].energy_pj == pytest.approx(energy["stage0"] + energy["stage1"] + energy["head1"])
    expected = expected_cost(exits, (0.5, 0.25, 0.25))
    assert expected.energy_pj == pytest.approx(
        0.5 * exits[0].energy_pj + 0.25 * exits[1].energy_pj + 0.25 * exits[2].energy_pj
    )
    assert expected.worst_latency_cycles == exits[2].latency_cycles
    assert expected.energy_pj < exits[2].energy_pj


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
    from codesign.cost_cache import LayerCostCache
    from codesign.hardware import load_hardware
    from codesign.layers import gemm_layer
    from codesign.zigzag_runner import LayerCost

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


def test_bad_accelerator_inputs_get_one_line_errors(tmp):
    with pytest.raises(CodesignError, match="no_such_accel.*name: expected one of"):
        load_hardware("no_such_accel")
    broken = tmp / "broken.yaml"
    broken.write_text("name: x\nmemories: [unclosed\n")
    (tmp / "broken.mapping.yaml").write_text("- name: default\n")
    with pytest.raises(CodesignError, match=r"broken\.yaml: line \d+: expected valid YAML"):
        load_hardware(broken)
    wrong = tmp / "wrong.yaml"
    wrong.write_text("name: x\nmemories: {}\noperational_array: {unit_energy: fast}\n")
    (tmp / "wrong.mapping.yaml").write_text(Path(load_hardware("edge_tpu_like").mapping_path).read_text())
    with pytest.raises(CodesignError) as info:
        load_hardware(wrong)
    assert (
        str(wrong) in str(info.value)
        and "operational_array" in str(info.value)
        and "\n" not in str(info.value)
    )
    lonely = tmp / "lonely.yaml"
    lonely.write_text(Path(load_hardware("edge_tpu_like").accelerator_path).read_text())
    with pytest.raises(CodesignError, match=r"lonely\.mapping\.yaml: file: expected the mapping YAML"):
        load_hardware(lonely)
