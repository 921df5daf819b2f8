from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from codesign.cli.main import main
from codesign.cost.report import cost_onnx
from tests.cost.test_zigzag import FAST


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


def test_a_multi_core_cost_says_layers_are_not_split_over_cores(network: Path):
    from codesign.cost.report import cost_onnx
    from codesign.cost.settings import CostOptions

    report = cost_onnx(network, "edge_tpu_x4", options=CostOptions(lpf_limit=2))
    (note,) = [n for n in report.notes if n.startswith("multi-core:")]
    assert "1 of 4 cores used here" in note and "never split over cores" in note
    single = cost_onnx(network, "edge_tpu_like", options=CostOptions(lpf_limit=2))
    assert not any(n.startswith("multi-core:") for n in single.notes)
