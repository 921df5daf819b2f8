from __future__ import annotations

from pathlib import Path

import pandas as pd

from codesign.cli.main import main

STATIC_WORKLOAD = """
name: tiny-static
dataset: digits
accelerator: edge_tpu_like
space:
  stages:
    - {depth: 1, width: [8, 16], kernel: 3, stride: 1, weight_bits: [4, 8], act_bits: 8}
    - {depth: 1, width: 16, kernel: 3, stride: 2, weight_bits: 8, act_bits: 8}
    - {depth: 1, width: 32, kernel: 3, stride: 2, weight_bits: [4, 8], act_bits: 8}
  exit_branches: {convs: [0, 1], pool: [1, 2]}   # heads the static supernet holds but never trains
  final_head: {pool: 1}
  threshold_tuning: {max_accuracy_drop: 0.01}
training:
  supernet: {epochs: 2}
  finetune: {final_epochs: 0}
cost: {opt: EDP, lpf_limit: 3}
search: {population: 4, generations: 2, seed: 1, objectives: [accuracy, energy]}
"""


def test_explore_static_searches_networks_without_early_exits_and_resumes_static(tmp: Path, capsys):
    workload = tmp / "w.yaml"
    workload.write_text(STATIC_WORKLOAD)
    run_dir = tmp / "run"
    cache = ["--cost-cache", str(tmp / "c.sqlite"), "-q", "-j", "1"]
    assert main(["explore", "-w", str(workload), "--run-dir", str(run_dir), "--static", *cache]) == 0
    candidates = pd.read_csv(run_dir / "candidates.csv")
    assert len(candidates) >= 2 and (candidates["num_exits"] == 1).all()
    assert (candidates["energy_vs_static"] == 1.0).all()  # a static network is its own counterpart
    assert '"early_exits": false' in (run_dir / "config.json").read_text()
    capsys.readouterr()
    assert main(["explore", "--resume", str(run_dir), *cache]) == 0  # resumes as the static search it was
    assert "evaluations: 0 new" in capsys.readouterr().out
