from __future__ import annotations

from dataclasses import replace

import pytest

from codesign.cost.layer_specs import OperatorSpec, gemm_layer
from codesign.cost.network import operator_cost, precision_adjusted
from codesign.cost.records import LayerCost
from codesign.hardware.memory import activation_buffer
from codesign.hardware.target import MacEnergyModel


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
