"""Partial weight residency and activations by liveness (`cost.residency`), with real ZigZag runs: continuity
between everything on chip and everything off chip, the most valuable tensors kept, the plan visible in
`codesign cost`'s outputs."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
import zigzag
from torch import nn

from codesign.cli.main import main
from codesign.cost.engine import CostEngine
from codesign.cost.graph import parse_onnx
from codesign.cost.network import network_costs
from codesign.cost.report import cost_onnx
from codesign.cost.residency import IMC, _live_bits, plan_residency, resident_target, run_probabilities
from codesign.cost.settings import CostModelSettings, CostOptions
from codesign.deploy.qcdq import export_qcdq
from codesign.hardware.memory import on_chip_weight_bytes
from codesign.hardware.target import load_hardware
from tests.conftest import float_network
from tests.cost.test_imc import PLAIN
from tests.cost.test_zigzag import FAST as ZIGZAG_FAST

FAST = CostOptions(opt="EDP", lpf_limit=2)


AUTO = CostModelSettings(precision_aware_mac=False, non_compute_ops=False, residency="auto")


OFFCHIP = replace(AUTO, residency="offchip")


WEIGHT_SRAM = "memories.sram_32KB.size"  # edge_tpu_like's on-chip weight memory


ACTIVATION_SRAM = "memories.sram_2MB.size"


def chain_network(path: Path) -> Path:
    """Four layers of 0.4, 4.6, 9.2 and 20.5 KB of 8-bit weights: 34.7 KB, just over edge_tpu_like's 32 KB."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 8 * 8, 10),
    )
    torch.onnx.export(net, torch.zeros(1, 3, 16, 16), str(path), dynamo=False, opset_version=13)
    return path


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.a = nn.Conv2d(8, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = torch.relu(self.stem(x))
        y = self.b(torch.relu(self.a(skip))) + skip
        return self.head(torch.flatten(y, 1))


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory):
    return parse_onnx(chain_network(tmp_path_factory.mktemp("chain") / "chain.onnx"))


def weight_bits(network) -> list[int]:  # noqa: ANN001
    return [layer.weight_elements * layer.weight_bits for layer in network.layers]


def capacity_only(overrides: dict[str, int]) -> dict[str, object]:
    """Sizes changed alone: each resized memory keeps the file's per-access energies and area (CACTI, which
    prices a resized memory otherwise, is not asked), since these tests are about what fits where."""
    memories = load_hardware("edge_tpu_like").accelerator_data["memories"]
    pinned: dict[str, object] = dict(overrides)
    for path in overrides:
        name = path.split(".")[1]
        pinned.update(
            {f"memories.{name}.{field}": memories[name][field] for field in ("r_cost", "w_cost", "area")}
        )
    return pinned


def total_energy(network, overrides: dict[str, int], settings: CostModelSettings = AUTO) -> float:  # noqa: ANN001
    target = load_hardware("edge_tpu_like", overrides=capacity_only(overrides))
    items = network_costs(network.layers, network.operators, CostEngine(target, FAST), settings, target)
    return sum(item.energy_pj for item in items)


def test_where_everything_fits_every_layer_is_costed_with_its_operands_on_chip(chain):
    target = load_hardware("edge_tpu_like", overrides=capacity_only({WEIGHT_SRAM: sum(weight_bits(chain))}))
    plan = plan_residency(chain.layers, target, "auto", operators=chain.operators)
    assert all(plan.weights_on_chip) and all(plan.activations_on_chip)
    assert plan.streamed_bytes == 0 and plan.on_chip_bytes == sum(weight_bits(chain)) / 8
    engine = CostEngine(target, FAST)
    items = network_costs(chain.layers, chain.operators, engine, AUTO, target)
    resident = engine.layer_costs(chain.layers, resident_target(target, True, True))
    assert [i.energy_pj for i in items] == [c.energy_pj for c in resident]
    assert [i.latency_cycles for i in items] == [c.latency_cycles for c in resident]
    assert all(i.weights_at == "on-chip" and i.weight_bytes_streamed == 0 for i in items)


def test_where_nothing_fits_it_equals_offchip(chain):
    smallest = min(weight_bits(chain))
    tiny = {WEIGHT_SRAM: smallest - 8, ACTIVATION_SRAM: 16_000}  # bits: below every tensor and every live set
    target = load_hardware("edge_tpu_like", overrides=capacity_only(tiny))
    plan = plan_residency(chain.layers, target, "auto", operators=chain.operators)
    assert not any(plan.weights_on_chip) and not any(plan.activations_on_chip) and plan.weight_load is None
    assert total_energy(chain, tiny) == total_energy(chain, tiny, OFFCHIP)


def test_one_layer_over_the_sram_costs_at_most_that_layers_streaming_more(chain):
    """On the same accelerator, the network one layer over its weight SRAM against the same network with every
    weight on chip (each layer still fits the SRAM alone, so ZigZag can cost that): the difference is at most
    what streaming that one layer's weights adds."""
    bits = weight_bits(chain)
    checked = 0
    for index, layer in enumerate(chain.layers):
        size = sum(bits) - bits[index]
        if max(bits) > size:
            continue
        target = load_hardware("edge_tpu_like", overrides=capacity_only({WEIGHT_SRAM: size}))
        engine = CostEngine(target, FAST)
        everything_on_chip = sum(
            c.energy_pj for c in engine.layer_costs(chain.layers, resident_target(target, True, True))
        )
        over = total_energy(chain, {WEIGHT_SRAM: size})
        kept, streamed = (
            engine.layer_costs([layer], resident_target(target, weights, True))[0].energy_pj
            for weights in (True, False)
        )
        assert everything_on_chip < over <= everything_on_chip + (streamed - kept) * (1 + 1e-9), layer.name
        checked += 1
    assert checked == 3


def test_energy_never_decreases_when_the_weight_sram_shrinks(chain):
    total = sum(weight_bits(chain))
    sizes = [total, int(total * 0.8), int(total * 0.5), int(total * 0.25), min(weight_bits(chain)) - 8]
    energies = [total_energy(chain, {WEIGHT_SRAM: size}) for size in sizes]
    assert energies == sorted(energies)
    assert energies[0] < energies[-1]


def test_partial_residency_keeps_the_bytes_that_save_most_traffic(tiny_model, tmp):
    network = parse_onnx(export_qcdq(tiny_model, tmp / "eenn.onnx"))
    layers = network.layers
    bits = weight_bits(network)
    capacity = sum(bits) // 2
    target = load_hardware("edge_tpu_like", overrides=capacity_only({WEIGHT_SRAM: capacity}))
    for fractions in [(0.0, 0.0, 1.0), (0.9, 0.05, 0.05), (0.3, 0.6, 0.1)]:
        runs = run_probabilities(network.exit_stages, fractions)
        plan = plan_residency(layers, target, "auto", runs=runs)
        value = [b * runs[layer.segment] for b, layer in zip(bits, layers, strict=True)]
        kept = [b for b, on in zip(bits, plan.weights_on_chip, strict=True) if on]
        assert sum(kept) <= capacity and plan.on_chip_bytes == sum(kept) / 8
        best = max(
            sum(v for v, on in zip(value, choice, strict=True) if on)
            for choice in itertools.product((False, True), repeat=len(bits))
            if sum(b for b, on in zip(bits, choice, strict=True) if on) <= capacity
        )
        achieved = sum(v for v, on in zip(value, plan.weights_on_chip, strict=True) if on)
        assert achieved == pytest.approx(best), fractions
    # most inputs leave at the first exit: the later stages and heads are the first to stream
    runs = run_probabilities(network.exit_stages, (0.9, 0.05, 0.05))
    plan = plan_residency(layers, target, "auto", runs=runs)
    first = [
        on
        for on, layer in zip(plan.weights_on_chip, layers, strict=True)
        if layer.segment in ("stage0", "head0")
    ]
    assert all(first)
    assert "exit fractions" in plan.describe()
    assert "unknown" in plan_residency(layers, target, "auto").describe()


def test_activations_by_liveness_hold_a_skip_connection_and_an_exit_heads_input(tiny_model, tmp):
    torch.onnx.export(
        Residual(), torch.zeros(1, 1, 8, 8), str(tmp / "res.onnx"), dynamo=False, opset_version=13
    )
    residual = parse_onnx(tmp / "res.onnx")
    live = _live_bits(residual.layers, residual.operators, lambda segment: 0)
    map_bits = 8 * 8 * 8 * 8  # one 8x8x8 map at 8 bits
    conv_b = [layer.name for layer in residual.layers].index("/b/Conv")
    # /b/Conv reads a's map and writes its own while the skip (the stem's map) waits for the Add
    assert live[conv_b] == 3 * map_bits
    own = residual.layers[conv_b].input_elements * 8 + residual.layers[conv_b].output_elements * 8
    target = load_hardware(
        "edge_tpu_like", overrides=capacity_only({ACTIVATION_SRAM: int(own + live[conv_b]) // 2})
    )
    plan = plan_residency(residual.layers, target, "auto", operators=residual.operators)
    assert not plan.activations_on_chip[conv_b]  # its own input and output alone would have fitted

    network = parse_onnx(export_qcdq(tiny_model, tmp / "eenn.onnx"))
    live = _live_bits(network.layers, network.operators, lambda segment: 0)
    for index, layer in enumerate(network.layers):
        if layer.segment == "head0":  # stage 0's output waits for stage 1 while head 0 runs
            assert (
                live[index]
                > layer.input_elements * layer.act_bits + layer.output_elements * layer.output_bits
            )


def test_in_memory_computing_makes_no_plan_and_says_so(chain):

    inputs = Path(zigzag.__file__).parent / "inputs"
    target = load_hardware(inputs / "hardware" / "aimc.yaml", inputs / "mapping" / "default_imc.yaml")
    plan = plan_residency(chain.layers, target, "auto")
    assert plan.mode == IMC and plan.weight_load is None and not any(plan.weights_on_chip)
    assert "array's cells" in plan.describe()


def test_one_time_load_is_priced_at_the_dvfs_point(chain):
    loads = []
    for point in (0, 2):
        target = load_hardware("edge_tpu_dvfs", overrides={"codesign.dvfs.point": point})
        loads.append((plan_residency(chain.layers, target, "auto").weight_load, target.energy_scale))
    (low, low_scale), (high, high_scale) = loads
    assert low_scale != high_scale and low.bits == high.bits
    assert low.energy_pj / low_scale == pytest.approx(high.energy_pj / high_scale)


def test_on_chip_weight_bytes_never_count_the_off_chip_memory(tmp):
    data = yaml.safe_load((Path(load_hardware("edge_tpu_like").accelerator_path)).read_text())
    assert on_chip_weight_bytes(load_hardware("edge_tpu_like")) == 32 * 1024
    data["memories"]["sram_32KB"]["operands"] = ["I1"]  # weights now only in the registers and DRAM
    data["memories"]["sram_32KB"]["ports"] = [
        {**port, "allocation": [a.replace("I2", "I1") for a in port["allocation"]]}
        for port in data["memories"]["sram_32KB"]["ports"]
    ]
    path = tmp / "no_weight_sram.yaml"
    path.write_text(yaml.safe_dump(data))
    mapping = load_hardware("edge_tpu_like").mapping_path
    target = load_hardware(path, mapping)
    assert on_chip_weight_bytes(target) == 1  # the 1-byte register file, never the DRAM


def test_codesign_cost_shows_where_weights_live_and_refuses_zigzag_only_with_auto(tmp, capsys):
    model = chain_network(tmp / "chain.onnx")
    out = tmp / "out"
    argv = ["cost", str(model), "--lpf-limit", "2", "--cost-cache", str(tmp / "c.sqlite"), "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "KiB streamed" in printed and "one-time weight load" in printed

    layers = pd.read_csv(out / "layers.csv")
    assert {"weights_at", "activations_at", "weight_bytes_on_chip", "weight_bytes_streamed"} <= set(
        layers.columns
    )
    assert set(layers["weights_at"]) == {"on-chip", "off-chip"}  # 34.7 KB of weights, 32 KB of SRAM
    summary = json.loads((out / "cost.json").read_text())
    (core,) = summary["weights_per_core"]
    assert core["memory"] == "sram_32KB" and core["capacity_bytes"] == 32 * 1024
    assert core["on_chip_bytes"] + core["streamed_bytes"] == pytest.approx(
        sum(weight_bits(parse_onnx(model))) / 8
    )
    assert core["on_chip_bytes"] == layers["weight_bytes_on_chip"].sum()
    assert summary["weight_load"]["bits"] == core["on_chip_bytes"] * 8

    before = sorted(p.name for p in tmp.iterdir())
    assert main([*argv[:-1], str(tmp / "refused"), "--zigzag-only", "--residency", "auto"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--residency auto" in err[0] and "--zigzag-only" in err[0]
    assert sorted(p.name for p in tmp.iterdir()) == before


def test_residency_auto_streams_what_does_not_fit_exactly_as_edge_tpu_resident_costs_it(tmp: Path):
    big = float_network(
        tmp / "big.onnx", width=128, flat=64
    )  # 147 KB of 8-bit weights > the 32 KB weight SRAM: only the 3.5 KB first layer stays on chip
    layers = parse_onnx(big).layers
    auto = replace(PLAIN, residency="auto")
    like = network_costs(layers, [], CostEngine(load_hardware("edge_tpu_like"), ZIGZAG_FAST), auto)
    resident = network_costs(layers, [], CostEngine(load_hardware("edge_tpu_resident"), ZIGZAG_FAST), PLAIN)
    assert [item.weights_at for item in like] == ["on-chip", "off-chip", "off-chip"]
    assert all(item.activations_at == "on-chip" for item in like)
    for streamed, by_hand in zip(like[1:], resident[1:], strict=True):  # weights off chip, activations on
        assert (streamed.energy_pj, streamed.latency_cycles) == (by_hand.energy_pj, by_hand.latency_cycles)
    assert like[0].energy_pj < resident[0].energy_pj


@pytest.mark.parametrize("accelerator", ["edge_tpu_like", "eyeriss_like", "mcu_npu", "tpu_like_edge"])
def test_residency_never_makes_a_layer_cost_more_than_off_chip(accelerator: str, network: Path):
    layers = parse_onnx(network).layers
    engine = CostEngine(load_hardware(accelerator), ZIGZAG_FAST)
    auto = network_costs(layers, [], engine, replace(PLAIN, residency="auto"))
    off = network_costs(layers, [], engine, PLAIN)
    assert any(a.weights_at == "on-chip" or a.activations_at == "on-chip" for a in auto)
    for a, o in zip(auto, off, strict=True):
        assert a.energy_pj <= o.energy_pj * (1 + 1e-9), a.name
        assert a.latency_cycles <= o.latency_cycles * (1 + 1e-9), a.name


def test_resident_weights_report_their_one_time_load(tmp: Path):
    small = float_network(tmp / "small.onnx", width=8, flat=8)  # 6 KB of weights: they fit the 32 KB SRAM
    target = load_hardware("edge_tpu_like")
    layers = parse_onnx(small).layers
    plan = plan_residency(layers, target, "auto")
    assert all(plan.weights_on_chip) and plan.weight_load is not None
    weight_bits = sum(layer.weight_elements * layer.weight_bits for layer in layers)
    assert plan.weight_load.bits == weight_bits
    # every bit read once off chip (700 pJ per 64-bit access) and written once into the 32 KB SRAM (52.01 pJ
    # per 512-bit access), at the off-chip port's 64 bits per cycle
    assert plan.weight_load.energy_pj == pytest.approx(weight_bits * (700 / 64 + 52.01 / 512))
    assert plan.weight_load.cycles == -(-weight_bits // 64)
    report = cost_onnx(small, target, exit_fractions=(1.0,), options=ZIGZAG_FAST)
    assert report.weight_load["energy_pj"] == pytest.approx(plan.weight_load.energy_pj)
    assert "one-time weight load" in " ".join(report.notes)
