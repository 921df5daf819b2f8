from __future__ import annotations

import logging
from pathlib import Path

import onnx
import pytest
import torch
import yaml
from torch import nn

from codesign.cli.main import main
from codesign.cost.graph import parse_onnx
from codesign.cost.report import cost_onnx
from codesign.cost.settings import CostModelSettings, CostOptions
from codesign.hardware.target import load_hardware
from tests.cost.test_zigzag import ZIGZAG_INPUTS

PLAIN = CostModelSettings.zigzag_only()


class Branches(nn.Module):
    """A residual block with a 1x1 downsample shortcut, then `ways` branches concatenated."""

    def __init__(self, ways: int = 2) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.downsample = nn.Conv2d(8, 16, 1, stride=2)
        self.branches = nn.ModuleList(nn.Conv2d(16, 8, k, padding=k // 2) for k in (1, 3, 5)[:ways])
        self.head = nn.Conv2d(8 * ways, 10, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))) + self.downsample(x))
        return self.head(torch.cat([branch(x) for branch in self.branches], dim=1))


def zigzag_cut(network: str, output: str, path: Path) -> Path:
    """ZigZag's shipped network up to one tensor (weights stay missing external data: costs need shapes only)."""
    model = onnx.load(str(ZIGZAG_INPUTS / "workload" / f"{network}.onnx"), load_external_data=False)
    onnx.save(onnx.utils.Extractor(model).extract_model(["input.1"], [output]), str(path))
    return path


IMC_GRAPHS = {  # each past the point where an IMC workload linked along first parents only stopped
    "resnet18 to the first downsample merge": ("resnet18", "/layer2/layer2.1/conv1/Conv_output_0", "aimc"),
    "mobilenetv2 to two residual adds": (
        "mobilenetv2",
        "/features/features.6/conv/conv.0/conv.0.0/Conv_output_0",
        "dimc",
    ),
    "residual and concatenation": ("branches", "", "aimc"),
}


@pytest.mark.parametrize("graph", list(IMC_GRAPHS))
def test_in_memory_computing_equals_zigzag_on_residual_adds_and_concatenations(graph: str, tmp: Path):
    from zigzag.api import get_hardware_performance_zigzag

    network, output, hardware = IMC_GRAPHS[graph]
    if network == "branches":
        path = tmp / "branches.onnx"
        torch.onnx.export(Branches(), torch.zeros(1, 3, 8, 8), str(path), dynamo=False, opset_version=13)
    else:
        path = zigzag_cut(network, output, tmp / "cut.onnx")
    accelerator = ZIGZAG_INPUTS / "hardware" / f"{hardware}.yaml"
    mapping = ZIGZAG_INPUTS / "mapping" / "default_imc.yaml"
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(path), load_external_data=False))
    energy, latency, *_, per_layer = get_hardware_performance_zigzag(
        proto, str(accelerator), str(mapping), opt="EDP", lpf_limit=2, in_memory_compute=True,
        dump_folder=str(tmp / "zigzag"), loma_show_progress_bar=False,
    )  # fmt: skip
    logging.disable(logging.CRITICAL)
    report = cost_onnx(
        path,
        str(accelerator),
        mapping=str(mapping),
        options=CostOptions(opt="EDP", lpf_limit=2),
        settings=PLAIN,
    )
    layers = report.layers.set_index("name")
    cmes = {cme.layer.name: cme for cme, _ in per_layer[0][1]}
    assert sorted(cmes) == sorted(layers.index)
    for name, cme in cmes.items():
        assert layers.loc[name, "energy_pj"] == pytest.approx(cme.energy_total, rel=1e-9), name
        assert layers.loc[name, "latency_cycles"] == pytest.approx(cme.latency_total2, rel=1e-9), name
    assert report.exits["energy_pj"].iloc[-1] == pytest.approx(energy, rel=1e-9)
    assert report.exits["latency_cycles"].iloc[-1] == pytest.approx(latency, rel=1e-9)


def test_a_graph_zigzag_cannot_follow_in_memory_names_the_node_and_why(tmp: Path, capsys):
    path = tmp / "three_way.onnx"
    torch.onnx.export(Branches(ways=3), torch.zeros(1, 3, 8, 8), str(path), dynamo=False, opset_version=13)
    accelerator = ZIGZAG_INPUTS / "hardware" / "aimc.yaml"
    mapping = ZIGZAG_INPUTS / "mapping" / "default_imc.yaml"
    argv = [
        "cost",
        str(path),
        "-a",
        str(accelerator),
        "-m",
        str(mapping),
        "--out",
        str(tmp / "out"),
        "--lpf-limit",
        "2",
    ]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(path) in error
    assert "/branches.2/Conv" in error and "three-way Concat" in error
    assert not (tmp / "out").exists()


def test_an_early_exit_network_of_residual_blocks_gets_per_exit_costs_in_memory(tmp: Path):
    from codesign.deploy.qcdq import export_qcdq
    from codesign.network.model import build_model
    from codesign.spec import CandidateSpec, StageSpec

    stages = tuple(
        StageSpec(depth=1, width=w, kernel=3, stride=s, weight_bits=4, act_bits=4, block="basic")
        for w, s in ((8, 1), (16, 2), (16, 2))
    )
    spec = CandidateSpec(stages, (True, True), (0.2, 0.2), 10, 1, 8)
    torch.manual_seed(0)
    model = export_qcdq(build_model(spec), tmp / "eenn.onnx")
    accelerator = ZIGZAG_INPUTS / "hardware" / "aimc.yaml"
    mapping = ZIGZAG_INPUTS / "mapping" / "default_imc.yaml"
    options = CostOptions(opt="EDP", lpf_limit=2)
    report = cost_onnx(
        model, str(accelerator), mapping=str(mapping), exit_fractions=(0.5, 0.3, 0.2), options=options
    )
    exits = report.exits
    assert list(exits["exit"]) == ["exit0", "exit1", "exit2"]
    assert exits["energy_pj"].is_monotonic_increasing and (exits["energy_pj"] > 0).all()
    assert (report.layers["model"].str.contains("in-memory")).any()
    assert report.expected["energy_pj"] < report.expected["static_energy_pj"]
    with_exits = parse_onnx(model)
    assert any(len(node.predecessors) > 1 for node in with_exits.dataflow)  # residual Adds kept both parents


def test_a_run_on_an_in_memory_computing_accelerator_costs_every_exit(tmp: Path):

    from codesign.hardware.memory import key_figures
    from codesign.runs.store import RunStore

    hardware, mapping = (
        ZIGZAG_INPUTS / "hardware" / "aimc.yaml",
        ZIGZAG_INPUTS / "mapping" / "default_imc.yaml",
    )
    figures = key_figures(load_hardware(hardware, mapping))
    assert figures["mac_energy_pj"] is None and figures["chip_area"] > 0  # priced by ZigZag's IMC model
    stage = {"depth": 1, "kernel": 3, "weight_bits": 8, "act_bits": 8, "block": "basic"}
    workload = {
        "name": "tiny-imc", "dataset": "digits", "accelerator": str(hardware), "mapping": str(mapping),
        "space": {"stages": [{**stage, "width": 8, "stride": 1}, {**stage, "width": 16, "stride": 2},
                             {**stage, "width": 16, "stride": 2}]},
        "training": {"epochs": 1, "batch_size": 64},
        "cost": {"lpf_limit": 2},
        "search": {"population": 2, "generations": 1, "seed": 0},
    }  # fmt: skip
    path = tmp / "imc.yaml"
    path.write_text(yaml.safe_dump(workload))
    argv = [
        "explore",
        "-w",
        str(path),
        "--run-dir",
        str(tmp / "run"),
        "--cost-cache",
        str(tmp / "c.sqlite"),
        "-q",
        "-j",
        "1",
    ]
    assert main(argv) == 0
    with RunStore.of_run(tmp / "run") as store:
        results = [record.result for record in store.finals().values()]
    assert results
    for result in results:
        assert len(result.exits) == len(result.spec.active_exit_stages)
        assert all(cost.energy_pj > 0 for cost in result.exits)
        assert result.chip_area == pytest.approx(figures["chip_area"])
