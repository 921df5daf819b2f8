"""Costs an architect can trust: every ZigZag example through `codesign cost` equals ZigZag itself (in-memory
computing included), residency, DVFS, breakdowns that add up, and a searched dataflow (mapping gene)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import onnx
import pandas as pd
import pytest
import torch
import yaml
import zigzag
from torch import nn

from codesign.cli.main import main
from codesign.cost.engine import CostEngine
from codesign.cost.exits import STATIC
from codesign.cost.graph import parse_onnx
from codesign.cost.network import network_costs
from codesign.cost.report import cost_onnx
from codesign.cost.residency import plan_residency
from codesign.cost.settings import CostModelSettings, CostOptions
from codesign.hardware.target import load_hardware
from codesign.hardware.zigzag_files import capped_mapping_file

ZIGZAG_INPUTS = Path(zigzag.__file__).parent / "inputs"
# ZigZag 3.9.1's shipped hardware files, each with the mapping file it is meant for
SHIPPED = {
    "tpu_like": "tpu_like",
    "edge_tpu_like": "edge_tpu_like",
    "ascend_like": "ascend_like",
    "meta_prototype": "meta_prototype_like",
    "tesla_npu_like": "tesla_npu_like",
    "eyeriss_like": "default",
    "generic_array_cacti": "default",
    "gemm_l1": "gemm_l1",
    "gemm_l1_l3": "gemm_l1_l3",
    "aimc": "default_imc",
    "dimc": "default_imc",
}
FAST = CostOptions(opt="EDP", lpf_limit=3)
PLAIN = CostModelSettings.zigzag_only()


def float_network(path: Path, width: int = 32, flat: int = 64) -> Path:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, flat, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(flat * 8 * 8, 10),
    )
    torch.onnx.export(net, torch.zeros(1, 3, 16, 16), str(path), dynamo=False, opset_version=13)
    return path


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return float_network(tmp_path_factory.mktemp("net") / "net.onnx")


@pytest.mark.parametrize("hardware", list(SHIPPED))
def test_every_shipped_zigzag_example_through_codesign_cost_equals_zigzag(
    hardware: str, network: Path, tmp: Path, capsys: pytest.CaptureFixture[str]
):
    from zigzag.api import get_hardware_performance_zigzag

    accelerator = ZIGZAG_INPUTS / "hardware" / f"{hardware}.yaml"
    mapping = ZIGZAG_INPUTS / "mapping" / f"{SHIPPED[hardware]}.yaml"
    imc = hardware in ("aimc", "dimc")
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(network)))
    result = get_hardware_performance_zigzag(
        proto,
        str(accelerator),
        str(mapping),
        opt=FAST.opt,
        lpf_limit=FAST.lpf_limit,
        in_memory_compute=imc,
        dump_folder=str(tmp / "zigzag"),
        loma_show_progress_bar=False,
    )
    logging.disable(logging.CRITICAL)  # ZigZag's API switches INFO logging on for everyone
    per_layer = {cme.layer.name: cme for cme, _ in result[-1][0][1]}
    out = tmp / "cost"
    # the shipped files unchanged: an unrolling wider than the array (default.yaml's K 32 on eyeriss_like's
    # 14-wide D1) is costed as ZigZag cuts it, with one warning line naming the mapping entry
    cut = capped_mapping_file(accelerator, mapping, tmp / "mapping") != mapping
    assert cut == (hardware == "eyeriss_like")
    argv = [
        "cost", str(network), "-a", str(accelerator), "--mapping", str(mapping), "--zigzag-only",
        "--opt", FAST.opt, "--lpf-limit", str(FAST.lpf_limit), "--out", str(out), "--cost-cache", str(tmp / "c.sqlite"),
    ]  # fmt: skip
    assert main(argv) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    if cut:  # K 32 on the 14-wide D1, C 32 on the 12-wide D2: one line per mapping entry
        assert len(warned) == 2 and all(str(mapping) in line for line in warned), warned
        assert "[0] (default).spatial_mapping.D1: unrolls K 32" in warned[0] and "cut to K 14" in warned[0]
        assert "[0] (default).spatial_mapping.D2: unrolls C 32" in warned[1] and "cut to C 12" in warned[1]
    else:
        assert not warned, warned
    layers = pd.read_csv(out / "layers.csv").set_index("name")
    for name, cme in per_layer.items():
        assert layers.loc[name, "energy_pj"] == pytest.approx(cme.energy_total, rel=1e-9), name
        assert layers.loc[name, "latency_cycles"] == pytest.approx(cme.latency_total2, rel=1e-9), name
    assert layers["energy_pj"].sum() == pytest.approx(result[0], rel=1e-9)
    assert layers["latency_cycles"].sum() == pytest.approx(result[1], rel=1e-9)


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


def test_breakdowns_add_up_to_each_layer_and_exit(network: Path):
    report = cost_onnx(network, "edge_tpu_like", exit_fractions=(1.0,), options=FAST)
    by_layer = report.breakdown.groupby("name", sort=False)["energy_pj"].sum()
    layers = report.layers.set_index("name")
    assert by_layer.to_dict() == pytest.approx(layers["energy_pj"].to_dict(), rel=1e-9)
    latency_parts = layers[
        [
            "ideal_cycles",
            "spatial_stall_cycles",
            "temporal_stall_cycles",
            "onloading_cycles",
            "offloading_cycles",
        ]
    ].sum(axis=1)
    computed = layers["macs"] > 0
    assert latency_parts[computed].to_dict() == pytest.approx(
        layers.loc[computed, "latency_cycles"].to_dict()
    )
    assert set(report.breakdown["direction"]) == {"read", "write", "compute"}
    from codesign.cost.roles import ROLE_COLUMNS

    by_name = report.exits.filter(like="energy_").drop(columns=["energy_pj", *ROLE_COLUMNS])
    exit_parts = by_name.sum(axis=1)
    assert exit_parts.tolist() == pytest.approx(report.exits["energy_pj"].tolist())


def test_residency_auto_streams_what_does_not_fit_exactly_as_edge_tpu_resident_costs_it(tmp: Path):
    big = float_network(
        tmp / "big.onnx", width=128, flat=64
    )  # 147 KB of 8-bit weights > the 32 KB weight SRAM: only the 3.5 KB first layer stays on chip
    layers = parse_onnx(big).layers
    auto = replace(PLAIN, residency="auto")
    like = network_costs(layers, [], CostEngine(load_hardware("edge_tpu_like"), FAST), auto)
    resident = network_costs(layers, [], CostEngine(load_hardware("edge_tpu_resident"), FAST), PLAIN)
    assert [item.weights_at for item in like] == ["on-chip", "off-chip", "off-chip"]
    assert all(item.activations_at == "on-chip" for item in like)
    for streamed, by_hand in zip(like[1:], resident[1:], strict=True):  # weights off chip, activations on
        assert (streamed.energy_pj, streamed.latency_cycles) == (by_hand.energy_pj, by_hand.latency_cycles)
    assert like[0].energy_pj < resident[0].energy_pj


@pytest.mark.parametrize("accelerator", ["edge_tpu_like", "eyeriss_like", "mcu_npu", "tpu_like_edge"])
def test_residency_never_makes_a_layer_cost_more_than_off_chip(accelerator: str, network: Path):
    layers = parse_onnx(network).layers
    engine = CostEngine(load_hardware(accelerator), FAST)
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
    report = cost_onnx(small, target, exit_fractions=(1.0,), options=FAST)
    assert report.weight_load["energy_pj"] == pytest.approx(plan.weight_load.energy_pj)
    assert "one-time weight load" in " ".join(report.notes)


def test_dvfs_points_scale_energy_and_latency_as_documented(network: Path):
    reports = [
        cost_onnx(
            network,
            "edge_tpu_dvfs",
            exit_fractions=(1.0,),
            options=FAST,
            overrides={"codesign.dvfs.point": p},
        )
        for p in (0, 1, 2)
    ]
    nominal = reports[0]
    for point, report in zip((0, 1, 2), reports, strict=True):
        target = load_hardware("edge_tpu_dvfs", overrides={"codesign.dvfs.point": point})
        op = target.operating_point
        assert report.clock_hz == op.clock_mhz * 1e6
        scale = (op.voltage / op.reference_voltage) ** 2
        # dynamic energy x (V / V_ref)^2, latency in cycles unchanged, seconds follow the clock
        assert report.layers["energy_pj"].sum() == pytest.approx(nominal.layers["energy_pj"].sum() * scale)
        assert report.exits["latency_cycles"].tolist() == nominal.exits["latency_cycles"].tolist()
        static = report.exits[f"energy_{STATIC}_pj"].iloc[-1]
        seconds = report.exits["latency_cycles"].iloc[-1] / report.clock_hz
        assert static == pytest.approx(5e-3 * op.voltage / 0.8 * seconds * 1e12)  # 5 mW at 0.8 V, linear in V
        assert report.expected["energy_pj"] == pytest.approx(report.layers["energy_pj"].sum() + static)
    assert [r.expected["latency_s"] for r in reports] == sorted(r.expected["latency_s"] for r in reports)


def test_a_mapping_gene_reaches_the_evaluated_candidates(tmp: Path, digits):

    from codesign.config.workload import parse_workload
    from codesign.cost.cache import LayerCostCache
    from codesign.evaluation.evaluator import EvaluationSettings, Evaluator
    from codesign.network.settings import TrainingConfig
    from codesign.runs.setup import prepare_space

    library = Path(__file__).resolve().parents[1] / "accelerators"
    mapping = yaml.safe_load((library / "edge_tpu_like.mapping.yaml").read_text())
    mapping[0]["spatial_mapping"] = {"D1": ["K, 8"], "D2": ["C, 8"], "D3": ["OX, 1"], "D4": ["OY, 1"]}
    (tmp / "narrow.mapping.yaml").write_text(yaml.safe_dump(mapping))
    default = str(library / "edge_tpu_like.mapping.yaml")
    workload = parse_workload(
        {
            "space": {"stages": [{"depth": 1, "width": 8}, {"depth": 1, "width": 16, "stride": 2}]},
            "hardware": {"search": {"mapping": [default, "narrow.mapping.yaml"]}},
        },
        str(tmp / "w.yaml"),
    )
    target = load_hardware(workload.accelerator)
    space = prepare_space(workload, digits, target)
    gene = next(g for g in space.genes if g.name == "hw.mapping")
    assert gene.choices == (default, str(tmp / "narrow.mapping.yaml"))
    evaluator = Evaluator(
        digits,
        CostEngine(target, FAST, LayerCostCache(tmp / "c.sqlite")),
        EvaluationSettings(training=TrainingConfig(epochs=1)),
    )
    indices = [0] * len(space.genes)
    results = []
    for choice in (0, 1):
        indices[space.genes.index(gene)] = choice
        spec = space.decode(indices)
        assert evaluator.target(spec).mapping_path.name == Path(gene.choices[choice]).name
        results.append(evaluator.evaluate(spec))
    assert (
        results[0].exits[-1].latency_cycles < results[1].exits[-1].latency_cycles
    )  # 16x fewer MACs in parallel
    assert "mapping=" in results[1].spec.describe_hardware()


def test_fingerprints_of_targets_without_dvfs_stay_as_runs_recorded_them():
    """A run store refuses to continue on another fingerprint: features added to the target (here DVFS)
    must not change the fingerprint of targets that do not use them. Pinned: edge_tpu_like as shipped."""
    from codesign.hardware.target import load_hardware

    assert load_hardware("edge_tpu_like").fingerprint == "d38621754bacff9d"


def test_costs_by_role_add_up_and_two_accelerators_share_one_table(network: Path, tmp: Path, capsys):
    from codesign.cost.roles import ROLE_COLUMNS
    from codesign.hardware.memory import ROLES as ROLE_NAMES

    out = tmp / "both"
    argv = ["cost", str(network), "-a", "edge_tpu_like,eyeriss_like", "--exit-fractions", "1.0",
            "--lpf-limit", "2", "--out", str(out), "--cost-cache", str(tmp / "c.sqlite"), "-j", "1"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "compare.csv")
    assert list(table["accelerator"]) == ["edge_tpu_like", "edge_tpu_like", "eyeriss_like", "eyeriss_like"]
    assert set(ROLE_COLUMNS) <= set(table.columns) and "chip_area" in printed
    area = table.groupby("accelerator")["chip_area"].first()
    assert area["edge_tpu_like"] > 0 and area["eyeriss_like"] > 0  # every library file states its areas
    for name in ("edge_tpu_like", "eyeriss_like"):
        exits = pd.read_csv(out / name / "exits.csv")
        layers = pd.read_csv(out / name / "layers.csv")
        by_role = exits[[c for c in ROLE_COLUMNS if c.count("_") > 2 or "off_chip" in c or "register" in c]]
        by_operand = exits[["energy_W_pj", "energy_I_pj", "energy_O_pj"]].sum(axis=1)
        memory = exits["energy_pj"] - exits["energy_MAC_pj"]
        assert by_role.sum(axis=1).tolist() == pytest.approx(memory.tolist(), rel=1e-9)
        assert by_operand.tolist() == pytest.approx(memory.tolist(), rel=1e-9)
        assert layers["energy_off_chip_pj"].sum() == pytest.approx(exits["energy_off_chip_pj"].iloc[-1])
    breakdown = pd.read_csv(out / "eyeriss_like" / "breakdown.csv")
    assert {"register_file", "buffer", "compute"} <= set(breakdown["role"]) <= {*ROLE_NAMES, "compute"}


def test_each_layers_mapping_is_shown_and_survives_the_cache(network: Path, tmp: Path):
    cache = tmp / "c.sqlite"
    for attempt in ("cold", "from the cache"):
        out = tmp / attempt
        argv = [
            "cost",
            str(network),
            "--lpf-limit",
            "2",
            "--out",
            str(out),
            "--cost-cache",
            str(cache),
            "-j",
            "1",
        ]
        assert main(argv) == 0
        layers = pd.read_csv(out / "layers.csv")
        compute = layers[layers["macs"] > 0]
        assert (compute["spatial_mapping"] != "-").all() and compute["temporal_mapping"].str.contains(
            r"\[O:"
        ).all()
        text = (out / "mapping.txt").read_text()
        assert all(f"Loop ordering for {name}" in text for name in compute["name"])
        breakdown = pd.read_csv(out / "breakdown.csv")
        moved = breakdown[(breakdown["direction"] != "compute") & (breakdown["energy_pj"] > 0)]
        assert (moved["word_accesses"] > 0).all()  # energy spent in a memory comes with accesses to it
        if attempt == "cold":
            first = (layers["temporal_mapping"].tolist(), text)
    assert (layers["temporal_mapping"].tolist(), text) == first


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
