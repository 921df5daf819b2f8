from __future__ import annotations

import json

import pandas as pd
import pytest

from codesign.cli.main import main
from codesign.cost.report import cost_onnx
from codesign.cost.settings import CostModelSettings, CostOptions
from codesign.deploy.qcdq import export_qcdq
from codesign.errors import CodesignError

FAST = CostOptions(lpf_limit=2)


def test_cost_cli_writes_tables_and_expected_costs(tiny_model, tmp, capsys):
    model = export_qcdq(tiny_model, tmp / "net.onnx")
    out = tmp / "out"
    code = main(
        [
            "cost",
            str(model),
            "-a",
            "edge_tpu_like",
            "--exit-fractions",
            "0.5,0.3,0.2",
            "--lpf-limit",
            "2",
            "--out",
            str(out),
            "--cost-cache",
            str(tmp / "c.sqlite"),
            "-j",
            "1",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "expected per inference" in printed and "note: pooling/Add" in printed
    layers = pd.read_csv(out / "layers.csv")
    exits = pd.read_csv(out / "exits.csv")
    summary = json.loads((out / "cost.json").read_text())
    assert set(layers["op_type"]) == {"Conv", "Gemm", "Pool"}
    assert list(exits["exit"]) == ["exit0", "exit1", "exit2"]
    assert summary["expected"]["energy_pj"] == pytest.approx(
        float((exits["energy_pj"] * exits["fraction"]).sum())
    )
    assert exits["energy_pj"].iloc[-1] == pytest.approx(layers["energy_pj"].sum())
    assert summary["expected"]["energy_pj"] < summary["expected"]["static_energy_pj"]


def test_zigzag_only_switches_off_the_extras(tiny_model, tmp):
    model = export_qcdq(tiny_model, tmp / "net.onnx")
    full = cost_onnx(model, "edge_tpu_like", options=FAST)
    plain = cost_onnx(model, "edge_tpu_like", options=FAST, settings=CostModelSettings.zigzag_only())
    assert set(plain.layers["model"]) == {"zigzag"} and "Pool" not in set(plain.layers["op_type"])
    # 4-bit stages are cheaper than ZigZag's precision-blind MAC energy says
    assert full.layers.query("op_type == 'Conv'")["mac_energy_pj"].sum() < plain.layers["mac_energy_pj"].sum()


def test_cost_input_errors_are_one_line(tiny_model, tmp):
    model = export_qcdq(tiny_model, tmp / "net.onnx")
    with pytest.raises(CodesignError, match="expected 3 values"):
        cost_onnx(model, "edge_tpu_like", exit_fractions=(0.5, 0.5), options=FAST)
    with pytest.raises(CodesignError, match="summing to 1"):
        cost_onnx(model, "edge_tpu_like", exit_fractions=(0.5, 0.5, 0.5), options=FAST)
    assert main(["cost", str(tmp / "nope.onnx"), "--out", str(tmp / "o")]) == 2
    assert not (tmp / "o").exists()
