from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from codesign.cli.main import main
from codesign.deploy.qcdq import onnxruntime_session
from codesign.deploy.segments import SegmentedModel
from codesign.runs.store import RunStore
from tests.conftest import explore_argv

SMALL_WORKLOAD = """
name: tiny-digits
dataset: digits
accelerator: edge_tpu_like
space:
  stages:
    - {depth: 1, width: [8, 16], kernel: 3, stride: 1, weight_bits: [4, 8], act_bits: 8}
    - {depth: 1, width: 16, kernel: 3, stride: 2, weight_bits: 8, act_bits: 8}
    - {depth: 1, width: 32, kernel: 3, stride: 2, weight_bits: 8, act_bits: 8}
  exit_fractions: [0.1, 0.3, 0.6]
training: {epochs: 3, batch_size: 64, learning_rate: 0.003}
cost: {opt: EDP, lpf_limit: 3}
search: {population: 6, generations: 2, seed: 1}
hardware: {compare: [eyeriss_like, mcu_npu]}
"""


def test_explore_end_to_end_writes_every_output_and_resumes(tmp: Path, capsys):
    workload = tmp / "tiny.yaml"
    workload.write_text(SMALL_WORKLOAD)
    run_dir = tmp / "run"
    args = explore_argv(workload, run_dir, tmp / "c.sqlite", "-q", "-j", "1")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Pareto front" in out and "wall time" in out
    rows = [line for line in out.splitlines() if re.match(r"^  [! ][$ ] *\d+\.\d ", line)]
    shown = [float(line[4:10]) for line in rows]
    assert rows and shown == sorted(shown, reverse=True)  # most accurate first
    assert sum("$" in line[:4] for line in rows) == 1 and "notation:" in out and "vs static" in out
    pareto = pd.read_csv(run_dir / "pareto.csv")
    for column in [
        "backbone",
        "exit_stages",
        "thresholds",
        "weight_bits",
        "act_bits",
        "accuracy",
        "exit_fractions",
        "expected_energy_pj",
        "expected_latency_cycles",
        "static_energy_pj",
        "static_latency_cycles",
    ]:
        assert column in pareto.columns
    assert len(pareto) >= 1
    assert (pareto["expected_energy_pj"] > 0).all() and pareto["accuracy"].between(0, 1).all()
    for _, row in pareto.iterrows():
        session = onnxruntime_session(run_dir / row["onnx"])
        assert len(session.get_outputs()) == row["num_exits"]
        # same decisions; at most a quantization level apart where an activation sits on a rounding tie
        assert row["onnx_top1_agreement"] >= 0.99 and row["onnx_max_rel_diff"] < 0.01
        segmented = SegmentedModel.load(run_dir / row["segments"])
        assert len(segmented.head_files) == row["num_exits"]
        # the deployed decision is the reported one: the final thresholds, under the network's own key
        assert segmented.spec_key == row["key"]
        reported = [float(t) for t in str(row["thresholds"]).split()] if row["num_exits"] > 1 else []
        assert list(segmented.thresholds) == pytest.approx(reported, rel=1e-5)
        fractions = [float(f) for f in row["exit_fractions"].split()]
        # written with 3 decimals: each may be 0.0005 off
        assert (
            abs(sum(fractions) - 1.0) <= 0.0005 * len(fractions) + 1e-9 and len(fractions) == row["num_exits"]
        )
        # a returned network's early exits are taken (an exit no input takes is switched off in the search)
        assert row["num_exits"] == 1 or sum(fractions[:-1]) > 0
        # per exit: its own accuracy, temperature and calibration error after and before it
        for column in (
            "exit_accuracies",
            "exit_temperatures",
            "exit_calibration_errors",
            "exit_calibration_errors_raw",
        ):
            assert len(str(row[column]).split()) == row["num_exits"], column
        assert segmented.temperatures == pytest.approx(
            [float(t) for t in str(row["exit_temperatures"]).split()], rel=1e-3
        )
    assert (pareto["num_exits"] > 1).any()  # the search returns early-exit networks
    assert "ECE" in out and "takes" in out  # the summary's per-exit line
    assert (run_dir / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    compared = pd.read_csv(run_dir / "compare.csv")  # every returned network on each listed accelerator
    assert set(compared["network"]) == set(pareto["key"])
    assert set(compared["accelerator"]) == {"eyeriss_like", "mcu_npu"}
    assert (compared.loc[compared["accelerator"] == "eyeriss_like", "chip_area"] > 0).all()
    candidates = pd.read_csv(run_dir / "candidates.csv")
    stored = len(RunStore(run_dir / "run.db"))
    assert stored == len(candidates) >= len(pareto)

    # Same run folder again: everything comes from the store, nothing is re-evaluated.
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"resuming with {stored} stored evaluations" in out
    assert "evaluations: 0 new" in out and "0 layer evaluations" in out
    assert len(RunStore(run_dir / "run.db")) == stored
    assert pd.read_csv(run_dir / "pareto.csv")["key"].tolist() == pareto["key"].tolist()

    # A returned network costed again: the run's settings and cache by default, its figures, in under 1 s.
    row = pareto.iloc[0]
    start = time.perf_counter()
    assert main(["cost", str(run_dir / row["onnx"]), "--out", str(tmp / "again"), "-j", "1"]) == 0
    assert time.perf_counter() - start < 1.0
    captured = capsys.readouterr()
    assert (
        f"network {row['key']} of run {run_dir.resolve()}" in captured.out and "lpf limit 3" in captured.out
    )
    assert "costing layers with ZigZag" not in captured.err  # every layer from the run's cache
    again = json.loads((tmp / "again" / "cost.json").read_text())["expected"]
    assert again["energy_pj"] == pytest.approx(row["expected_energy_pj"], rel=1e-9)
    assert again["static_energy_pj"] == pytest.approx(row["static_energy_pj"], rel=1e-9)


def test_cli_bad_accelerator_is_one_line_and_exit_code_2(tmp: Path):
    result = subprocess.run(
        [sys.executable, "-m", "codesign.cli.main", "explore", "--accelerator", "nope", "--runs", str(tmp)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "nope" in lines[0] and "expected one of" in lines[0], result.stderr
    assert not any(tmp.iterdir())  # nothing half-written


def test_version_and_a_quiet_report(tmp, capsys):
    import codesign

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"codesign {codesign.__version__}"
    run = tmp / "run"
    argv = explore_argv(Path("digits"), run, tmp / "c.sqlite", "-q")
    assert main([*argv, "--generations", "1", "--population", "4", "--epochs", "1"]) == 0
    capsys.readouterr()
    (run / "pareto.csv").unlink()
    assert main(["report", str(run), "-q", "--cost-cache", str(tmp / "c.sqlite")]) == 0
    assert capsys.readouterr().out == "" and (run / "pareto.csv").is_file()
