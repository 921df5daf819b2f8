from __future__ import annotations

from pathlib import Path

import pandas as pd

from codesign.cli.main import main
from codesign.runs.store import RunStore

from .conftest import explore_argv

WORKLOAD = """
name: backend-test
dataset: digits
space:
  stages:
    - {depth: 1, width: [8, 16], stride: 1, weight_bits: [4, 8], act_bits: 8}
    - {depth: 1, width: 16, stride: 2, weight_bits: 8, act_bits: 8}
    - {depth: 1, width: [16, 32], stride: 2, weight_bits: 8, act_bits: 8}
  exit_fractions: [0.1, 0.3, 0.6]
training:
  supernet: {epochs: 2, batch_size: 64, random_subnets: 1}
  finetune: {head_steps: 10, final_epochs: 0}
cost: {lpf_limit: 2}
search: {population: 6, generations: 2, seed: 5}
"""


def _run(tmp: Path, name: str, *extra: str) -> tuple[pd.DataFrame, set[str]]:
    workload = tmp / "w.yaml"
    workload.write_text(WORKLOAD)
    run = tmp / name
    args = explore_argv(workload, run, tmp / "c" / "costs.sqlite", "-q")
    assert main([*args, *extra]) == 0
    return pd.read_csv(run / "pareto.csv"), RunStore(run / "run.db").keys()


def test_local_workers_and_a_local_dask_cluster_give_the_same_front(tmp: Path):
    """Candidates evaluated and returned networks finalised (measured on test, exported, checked against
    onnxruntime) in this process, in worker processes or on Dask workers: the very same figures."""
    local, local_keys = _run(tmp, "local", "--workers", "1")
    workers, worker_keys = _run(tmp, "workers", "--workers", "2")
    dask, dask_keys = _run(tmp, "dask", "--dask", "local:2")
    assert local_keys == worker_keys == dask_keys
    for other in (workers, dask):
        pd.testing.assert_frame_equal(other, local)
    for name in ("candidates.csv", "hypervolume.csv"):
        assert (tmp / "workers" / name).read_bytes() == (tmp / "local" / name).read_bytes()


def test_without_workers_given_small_searches_run_in_this_process_and_larger_ones_use_every_core(monkeypatch):
    from codesign.cli import explore

    monkeypatch.setattr(explore, "usable_cpus", lambda: 2)
    assert explore.auto_workers(4) == 1 and explore.auto_workers(12) == 1  # start-up would cost more
    assert explore.auto_workers(60) == 2  # the default search
    monkeypatch.setattr(explore, "usable_cpus", lambda: 8)
    assert explore.auto_workers(60) == 3 and explore.auto_workers(1000) == 8


def test_evaluator_built_for_workers_tunes_thresholds_as_the_workload_asks(tmp: Path):
    import yaml

    from codesign.config.workload import parse_workload
    from codesign.evaluation.backends import build_evaluator
    from codesign.runs.setup import prepare_run

    data = yaml.safe_load(WORKLOAD)
    del data["space"]["exit_fractions"]
    data["space"]["threshold_tuning"] = {
        "max_accuracy_drop": [0.0, 0.01],
        "confidence": 0.9,
        "reference": "best",
    }
    workload = parse_workload(data, "w.yaml")
    recipe = prepare_run(workload).recipe(tmp / "run", tmp / "costs.sqlite", None)
    evaluator = build_evaluator(recipe)  # as a worker process builds it, from the recipe alone
    settings = evaluator.settings
    assert (settings.threshold_tuning, settings.tuning_confidence, settings.drop_reference) == (
        0.0,
        0.9,
        "best",
    )


def test_worker_runs_report_the_zigzag_work_done_in_the_workers(tmp: Path, capsys):
    import re

    workload = tmp / "w.yaml"
    workload.write_text(WORKLOAD.replace("generations: 2", "generations: 1"))
    args = explore_argv(workload, tmp / "run", tmp / "cold.sqlite")
    capsys.readouterr()
    assert main([*args, "-q", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    found = re.search(
        r"ZigZag \(evaluation workers\): (\d+) layer evaluations \([\d.]+ s\), (\d+) cache hits", out
    )
    assert found is not None, out[-500:]
    calls, hits = int(found.group(1)), int(found.group(2))
    assert calls > 0 and hits > 0  # a cold cache: the workers called ZigZag, and reused layers
