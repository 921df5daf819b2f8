from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from codesign.cli.main import main
from codesign.config.search import parse_search
from codesign.config.workload import parse_workload
from codesign.runs.store import RunStore
from codesign.search.settings import Constraints
from tests.config.test_search import SPACE
from tests.conftest import explore_argv

SURROGATE_WORKLOAD = """
name: tiny-surrogate
dataset: digits
accelerator: edge_tpu_like
space:
  stages:
    - {depth: 1, width: [8, 16], kernel: 3, stride: 1, weight_bits: [4, 8], act_bits: 8}
    - {depth: 1, width: [16, 32], kernel: 3, stride: 2, weight_bits: 8, act_bits: 8}
    - {depth: 1, width: 32, kernel: 3, stride: 2, weight_bits: [4, 8], act_bits: 8}
  exit_fractions: [0.1, 0.3, 0.6]
training:
  supernet: {epochs: 3}
  finetune: {final_epochs: 0}
cost: {opt: EDP, lpf_limit: 3}
search:
  seed: 2
  algorithm: spea2
  constraints: {min_accuracy: 0.8, weights_on_chip: true}
  surrogate: {initial: 6, per_iteration: 3, iterations: 2, predictors: [rbf, tree, gp]}
"""


def test_surrogate_explore_with_constraints_stores_predictor_quality_and_resumes(tmp: Path, capsys):
    workload = tmp / "w.yaml"
    workload.write_text(SURROGATE_WORKLOAD)
    run_dir = tmp / "run"
    args = explore_argv(workload, run_dir, tmp / "c.sqlite")
    assert main([*args, "-q", "-j", "1"]) == 0
    out = capsys.readouterr().out
    assert "surrogate round 2" in out
    store = RunStore(run_dir / "run.db")
    assert len(store) == 6 + 2 * 3  # every candidate asked for is a distinct network, evaluated once
    rounds = pd.read_csv(run_dir / "surrogate.csv")
    assert sorted(rounds["round"].unique()) == [1, 2]
    assert set(rounds["target"]) == {"accuracy", "energy", "latency", "min_accuracy", "weights_on_chip"}
    assert set(rounds["predictor"]) <= {"rbf", "tree", "gp"} and rounds["cv_kendall_tau"].between(-1, 1).all()
    candidates = pd.read_csv(run_dir / "candidates.csv")
    pareto = pd.read_csv(run_dir / "pareto.csv")
    assert len(pareto) >= 1 and candidates["feasible"].any()
    assert np.allclose(candidates["min_accuracy_violation"], (0.8 - candidates["accuracy_val"]) / 0.8)
    assert np.allclose(
        candidates["weights_on_chip_violation"], candidates["weight_bytes"] / (32 * 1024) - 1, rtol=1e-3
    )
    feasible_keys = set(candidates.loc[candidates["feasible"], "key"])
    assert set(pareto["key"]) <= feasible_keys and (pareto["weight_bytes"] <= 32 * 1024).all()
    import codesign

    frame = codesign.load_run(run_dir)  # the public API's view of the same run
    assert len(frame) == len(candidates) and frame["pareto"].sum() == len(pareto)
    assert set(frame.loc[frame["pareto"], "key"]) == set(pareto["key"])
    volumes = pd.read_csv(run_dir / "hypervolume.csv")
    assert len(volumes) == 3 and volumes["hypervolume"].is_monotonic_increasing  # archive + 2 rounds

    # Again: the rounds are retraced from the store without a single new evaluation, same front.
    assert main([*args, "-q", "-j", "1"]) == 0
    out = capsys.readouterr().out
    assert "evaluations: 0 new" in out
    assert pd.read_csv(run_dir / "pareto.csv")["key"].tolist() == pareto["key"].tolist()
    assert len(pd.read_csv(run_dir / "surrogate.csv")) == len(rounds)

    # A constraint nothing meets (the file's own dropped): a clear line, empty Pareto table, candidates listed.
    assert main([*args, "-q", "-j", "1", "--no-constraints", "--max-energy-uj", "1e-9"]) == 0
    out = capsys.readouterr().out
    assert "no evaluated candidate meets the constraints" in out and "expected energy <= 1e-09 uJ" in out
    assert len(pd.read_csv(run_dir / "candidates.csv")) >= len(candidates)
    after = pd.read_csv(run_dir / "candidates.csv")
    assert not after["feasible"].any()
    assert "max_energy_uj_violation" in after.columns and "min_accuracy_violation" not in after.columns
    assert Constraints(max_energy_uj=1e-9).active == ("max_energy_uj",)


def test_surrogate_budget_follows_population_and_generations_on_the_command_line():
    base = parse_workload(
        {"space": SPACE, "search": {"population": 2, "generations": 5, "surrogate": True}}, "w"
    )
    assert base.search.surrogate.initial == 4  # never fewer than 4 initial evaluations
    longer = parse_search("command line", {"generations": 20}, base.search)
    assert longer.surrogate.budget >= 2 * 20 - longer.surrogate.per_iteration
    assert longer.surrogate.budget > base.search.surrogate.budget
