from __future__ import annotations

import multiprocessing
from dataclasses import replace
from pathlib import Path

import onnx
import pytest

from codesign.cost.cache import LayerCostCache
from codesign.cost.engine import CostEngine
from codesign.cost.exits import Allocation, expected_cost, per_exit_costs
from codesign.cost.graph import OperatorSpec, gemm_layer, layers_from_onnx, parse_onnx
from codesign.cost.network import network_costs, operator_cost, precision_adjusted
from codesign.cost.records import ItemCost, LayerCost
from codesign.cost.report import cost_onnx
from codesign.cost.settings import CostModelSettings, CostOptions
from codesign.deploy.qcdq import export_qcdq
from codesign.errors import CodesignError
from codesign.hardware.memory import activation_buffer
from codesign.hardware.target import Interconnect, MacEnergyModel, load_hardware, zigzag_accelerator_file

from .test_training_export_layers import export_float

FAST = CostOptions(opt="EDP", lpf_limit=3)


def test_per_layer_costs_equal_zigzag_on_the_whole_graph(tmp, edge_tpu):
    from zigzag.api import get_hardware_performance_zigzag

    path = export_float(tmp / "float.onnx")
    inferred = tmp / "inferred.onnx"
    onnx.save(onnx.shape_inference.infer_shapes(onnx.load(str(path))), str(inferred))
    energy, latency, _ = get_hardware_performance_zigzag(
        str(inferred),
        str(zigzag_accelerator_file(edge_tpu, tmp)),
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
    # the same through the `codesign cost` API with the extras switched off
    report = cost_onnx(path, edge_tpu, options=FAST, settings=CostModelSettings.zigzag_only())
    assert report.layers["energy_pj"].sum() == pytest.approx(energy, rel=1e-6)
    assert report.exits["latency_cycles"].iloc[-1] == pytest.approx(latency, rel=1e-6)


def test_per_exit_costs_are_the_hand_summed_layer_costs(tiny_model, tmp, edge_tpu):
    network = parse_onnx(export_qcdq(tiny_model, tmp / "net.onnx"))
    items = network_costs(network.layers, network.operators, CostEngine(edge_tpu, FAST))
    energy: dict[str, float] = {}
    latency: dict[str, float] = {}
    for item in items:
        energy[item.segment] = energy.get(item.segment, 0.0) + item.energy_pj
        latency[item.segment] = latency.get(item.segment, 0.0) + item.latency_cycles
    assert {item.op_type for item in items} == {"Conv", "Gemm", "Pool"}
    exits = per_exit_costs(items, (0, 1, 2))
    assert exits[0].energy_pj == pytest.approx(energy["stage0"] + energy["head0"])
    assert exits[1].energy_pj == pytest.approx(
        energy["stage0"] + energy["head0"] + energy["stage1"] + energy["head1"]
    )
    assert exits[1].latency_cycles == pytest.approx(
        latency["stage0"] + latency["head0"] + latency["stage1"] + latency["head1"]
    )
    assert exits[2].latency_cycles == pytest.approx(sum(latency.values()))
    assert exits[2].energy_pj == pytest.approx(sum(energy.values()))
    # exit 0 switched off: its head is neither evaluated nor paid for
    skip = per_exit_costs([i for i in items if i.segment != "head0"], (1, 2))
    assert skip[0].energy_pj == pytest.approx(energy["stage0"] + energy["stage1"] + energy["head1"])
    expected = expected_cost(exits, (0.5, 0.25, 0.25))
    assert expected.energy_pj == pytest.approx(
        0.5 * exits[0].energy_pj + 0.25 * exits[1].energy_pj + 0.25 * exits[2].energy_pj
    )
    assert expected.worst_latency_cycles == exits[2].latency_cycles
    assert expected.energy_pj < exits[2].energy_pj


def item(segment: str, energy: float, latency: float, output_bits: int = 100) -> ItemCost:
    return ItemCost(
        segment,
        "Conv",
        segment,
        macs=1,
        weight_bits=8,
        act_bits=8,
        output_bits=1,
        output_elements=output_bits,
        weight_elements=0,
        energy_pj=energy,
        latency_cycles=latency,
        mac_energy_pj=0.0,
        memory_energy_pj=energy,
        utilization=1.0,
        model="test",
    )


SEGMENTS = [
    item("stage0", 10, 10),
    item("head0", 1, 2),
    item("stage1", 20, 20),
    item("head1", 2, 3),
    item("stage2", 30, 30),
    item("head2", 3, 4),
]


def test_single_core_schedule_is_sequential():
    exits = per_exit_costs(SEGMENTS, (0, 1, 2))
    assert [e.latency_cycles for e in exits] == [12, 35, 69]
    assert [e.energy_pj for e in exits] == [11, 33, 66]


def test_multi_core_heads_in_parallel_with_transfers_and_speculation():
    link = Interconnect(bandwidth_bits_per_cycle=10, energy_pj_per_bit=0.5, latency_cycles=1)
    allocation = Allocation(stage_cores=(0, 0, 0), head_cores=(1, 1, 1))
    exits = per_exit_costs(SEGMENTS, (0, 1, 2), allocation, link)
    # head0 waits for stage0 (10) + transfer (1 + 100/10) and runs 2 cycles; stage1 continues on core 0 meanwhile
    assert [e.latency_cycles for e in exits] == [23, 44, 75]
    # exit 0 pays stage0, head0 + its transfer (50 pJ) and 13 of stage1's 20 cycles of speculative work
    assert exits[0].energy_pj == pytest.approx(10 + 1 + 50 + 20 * 13 / 20)
    assert exits[1].energy_pj == pytest.approx(10 + 51 + 20 + 52 + 30 * 14 / 30)
    assert exits[2].energy_pj == pytest.approx(10 + 51 + 20 + 52 + 30 + 53)
    assert exits[2].transfer_energy_pj == pytest.approx(150)
    with pytest.raises(ValueError, match="interconnect"):
        per_exit_costs(SEGMENTS, (0, 1, 2), allocation, None)


def test_precision_aware_mac_energy_and_scalable_throughput(edge_tpu):
    edge_tpu = replace(edge_tpu, mac_energy=MacEnergyModel((8, 8), 0.85), precision_scalable=())
    raw = LayerCost(
        energy_pj=100.0,
        latency_cycles=50.0,
        mac_energy_pj=40.0,
        memory_energy_pj=60.0,
        ideal_cycles=20.0,
        utilization=0.4,
    )
    layer8 = gemm_layer(
        "g",
        "stage0",
        input_shape=(1, 64),
        out_features=10,
        weights_constant=True,
        weight_bits=8,
        act_bits=8,
        output_bits=8,
        partial_sum_bits=16,
        operand_source="input_from_layer",
        quantized=True,
    )
    same, _ = precision_adjusted(raw, layer8, edge_tpu)
    assert same == raw  # the reference precision reproduces ZigZag exactly
    layer4 = replace(layer8, weight_bits=4, act_bits=4)
    four, model = precision_adjusted(raw, layer4, edge_tpu)
    scale = 0.85 * (4 * 4) / 64 + 0.15 * (4 + 4) / 16
    assert four.mac_energy_pj == pytest.approx(40.0 * scale)
    assert four.energy_pj == pytest.approx(60.0 + 40.0 * scale)
    assert four.latency_cycles == raw.latency_cycles and "scaled throughput" not in model
    scalable = replace(edge_tpu, precision_scalable=((4, 2.0),))
    fast, model = precision_adjusted(raw, layer4, scalable)
    assert fast.latency_cycles == pytest.approx(50.0 - 20.0 * 0.5) and "approx" in model
    slow, _ = precision_adjusted(raw, layer8, scalable)
    assert slow.latency_cycles == 50.0


def test_pooling_cost_is_activation_buffer_traffic_plus_adds(edge_tpu):
    edge_tpu = replace(edge_tpu, mac_energy=MacEnergyModel((8, 8), 0.85))
    pool = OperatorSpec(
        "p",
        "Pool",
        "head0",
        input_elements=512,
        output_elements=32,
        act_bits=4,
        output_bits=4,
        operations=512,
    )
    cost = operator_cost(pool, edge_tpu)
    buffer = activation_buffer(edge_tpu)
    assert buffer.name == "sram_2MB"
    memory = 512 * 4 * 416.16 / 2048 + 32 * 4 * 378.4 / 2048
    adds = 512 * 0.04 * 0.15 * 8 / 16
    assert cost.energy_pj == pytest.approx(memory + adds)
    assert cost.latency_cycles == 1 + 1


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
    from codesign.cost.graph import gemm_layer
    from codesign.cost.records import LayerCost
    from codesign.hardware.target import load_hardware

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
