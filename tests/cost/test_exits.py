from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from codesign.cli.main import main
from codesign.cost.engine import CostEngine
from codesign.cost.exits import Allocation, expected_cost, per_exit_costs
from codesign.cost.graph import parse_onnx
from codesign.cost.network import network_costs
from codesign.cost.records import ItemCost
from codesign.deploy.qcdq import export_qcdq
from codesign.hardware.target import Interconnect
from tests.cost.test_zigzag import FAST


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


def test_a_multi_core_allocation_gets_a_schedule_per_core_and_a_timeline(tiny_model, tmp: Path, capsys):
    from codesign.deploy.qcdq import export_qcdq

    model = export_qcdq(tiny_model, tmp / "eenn.onnx")
    out = tmp / "x4"
    argv = ["cost", str(model), "-a", "edge_tpu_x4", "--cores", "0,0,1,1,2,3", "--exit-fractions", "0.5,0.3,0.2",
            "--lpf-limit", "2", "--out", str(out), "--cost-cache", str(tmp / "c.sqlite"), "-j", "1"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "schedule of one input through every exit" in printed and "idle: core 0" in printed
    tasks = pd.read_csv(out / "schedule.csv")
    assert set(tasks["segment"]) == {"stage0", "stage1", "stage2", "head0", "head1", "head2"}
    assert dict(zip(tasks["segment"], tasks["core"], strict=True)) == {
        "stage0": 0, "stage1": 0, "stage2": 1, "head0": 1, "head1": 2, "head2": 3,
    }  # fmt: skip
    for _, on_core in tasks.groupby("core"):  # a core runs one task at a time
        ordered = on_core.sort_values("start_cycles")
        assert (
            ordered["start_cycles"].iloc[1:].to_numpy() >= ordered["finish_cycles"].iloc[:-1].to_numpy()
        ).all()
    by = tasks.set_index("segment")
    for head in ("head0", "head1"):  # fed across cores: its stage's output, then the transfer
        stage = by.loc[f"stage{head[-1]}"]
        assert by.loc[head, "transfer_cycles"] > 0
        assert by.loc[head, "start_cycles"] >= stage["finish_cycles"] + by.loc[head, "transfer_cycles"]
    end = tasks["finish_cycles"].max()
    busy = (tasks["finish_cycles"] - tasks["start_cycles"]).groupby(tasks["core"]).sum()
    assert tasks.groupby("core")["core_idle_cycles"].first().to_dict() == pytest.approx(
        (end - busy).to_dict()
    )
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
