from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from codesign.cli.main import main
from codesign.runs.store import RunStore
from tests.conftest import explore_argv

WORKLOAD = """
name: resume-test
dataset: digits
space:
  stages:
    - {depth: 1, width: [8, 16], stride: 1, weight_bits: [4, 8], act_bits: 8}
    - {depth: [1, 2], width: 16, stride: 2, weight_bits: 8, act_bits: 8}
    - {depth: 1, width: [16, 32], stride: 2, weight_bits: 8, act_bits: 8}
  exit_fractions: [0.1, 0.3, 0.6, 0.9]
training:
  supernet: {epochs: 2, batch_size: 64, random_subnets: 1}
  finetune: {head_steps: 10, final_epochs: 0.2}
cost: {lpf_limit: 2}
search: {population: 6, generations: 4, seed: 3}
"""


def _stored(run_dir: Path) -> int:
    db = run_dir / "run.db"
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(str(db), timeout=5) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_sigkill_mid_search_then_resume_loses_and_repeats_nothing(tmp: Path, capsys):
    workload = tmp / "w.yaml"
    workload.write_text(WORKLOAD)
    common = ["-w", str(workload), "--cost-cache", str(tmp / "cache" / "layer_costs.sqlite"), "-q", "-j", "1"]

    reference = tmp / "reference"
    assert main(["explore", "--run-dir", str(reference), *common]) == 0
    capsys.readouterr()
    total = len(RunStore(reference / "run.db"))
    assert total >= 10

    killed = tmp / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "codesign.cli.main", "explore", "--run-dir", str(killed), *common],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while _stored(killed) < total // 2 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = _stored(killed)
    assert 0 < before < total, "the kill must land mid-search"

    # `--resume RUN` alone: the workload and settings come from the run folder
    resume = [
        "explore",
        "--resume",
        str(killed),
        "--cost-cache",
        str(tmp / "cache" / "layer_costs.sqlite"),
        "-q",
        "-j",
        "1",
    ]
    assert main(resume) == 0
    out = capsys.readouterr().out
    new = int(re.search(r"evaluations: (\d+) new", out).group(1))
    assert f"resuming with {before} stored evaluations" in out
    assert before + new == total  # nothing lost, nothing evaluated twice
    assert RunStore(killed / "run.db").keys() == RunStore(reference / "run.db").keys()
    front = pd.read_csv(killed / "pareto.csv")
    expected = pd.read_csv(reference / "pareto.csv")
    assert front["key"].tolist() == expected["key"].tolist()
    assert front["accuracy"].tolist() == expected["accuracy"].tolist()
    assert front["expected_energy_pj"].tolist() == expected["expected_energy_pj"].tolist()


def test_report_rebuilds_outputs_from_the_store(tmp: Path, capsys):
    workload = tmp / "w.yaml"
    workload.write_text(WORKLOAD.replace("generations: 4", "generations: 2"))
    run = tmp / "run"
    assert main(explore_argv(workload, run, tmp / "c.sqlite", "-q")) == 0
    original = (run / "pareto.csv").read_text()
    for name in ("pareto.csv", "candidates.csv", "pareto.png", "hypervolume.png", "exit_costs.png"):
        (run / name).unlink()
    capsys.readouterr()
    assert main(["report", str(run)]) == 0
    assert (run / "pareto.csv").read_text() == original
    for name in ("candidates.csv", "pareto.png", "hypervolume.png", "exit_costs.png", "hypervolume.csv"):
        assert (run / name).is_file(), name
    volumes = pd.read_csv(run / "hypervolume.csv")["hypervolume"].tolist()
    assert len(volumes) == 2 and volumes[1] >= volumes[0] > 0
    assert main(["report", str(tmp / "nowhere")]) == 2
    assert main(["explore", "--resume", str(tmp / "nowhere")]) == 2
