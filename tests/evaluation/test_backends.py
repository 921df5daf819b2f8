"""A distributed run on a real Dask scheduler and workers (separate processes) that loses a worker, or its
scheduler, mid-run."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from codesign.cli.main import main
from codesign.runs.store import RunStore
from tests.conftest import explore_argv

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


DASK = Path(sys.executable).parent / "dask"


DASK_WORKLOAD = {
    "name": "tiny-dask",
    "dataset": "digits",
    "accelerator": "edge_tpu_like",
    "space": {
        "stages": [
            {"depth": 1, "width": [8, 16], "stride": 1, "weight_bits": [4, 8], "act_bits": 8},
            {"depth": 1, "width": [16, 24], "stride": 2, "weight_bits": 8, "act_bits": 8},
            {"depth": 1, "width": 32, "stride": 2, "weight_bits": 8, "act_bits": 8},
        ]
    },
    "training": {
        "supernet": {"epochs": 1, "random_subnets": 1},
        "finetune": {"head_steps": 2, "final_epochs": 0.05},
    },
    "cost": {"lpf_limit": 2},
    "search": {"population": 6, "generations": 3, "seed": 0},
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def started(*args: str) -> subprocess.Popen:
    """A Dask process in its own process group (so that killing it kills its nanny and worker alike)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [str(DASK), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )


def killed(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


class Cluster:
    def __init__(self, workers: int, port: int | None = None):
        self.port = port or free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler = started(
            "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"
        )
        self.workers = [
            started("worker", self.address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard")
            for _ in range(workers)
        ]
        self.wait_for(workers)

    def wait_for(self, workers: int) -> None:
        from distributed import Client

        deadline = time.time() + 90
        with Client(self.address, timeout="30s") as client:
            while len(client.scheduler_info()["workers"]) < workers:
                assert time.time() < deadline, "Dask workers did not come up"
                time.sleep(0.5)

    def close(self) -> None:
        for process in [*self.workers, self.scheduler]:
            killed(process)


def explore(workload: Path, run: Path, cache: Path, address: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "codesign.cli.main", "explore", "-w", str(workload), "--run-dir", str(run),
            "--cost-cache", str(cache / "c.sqlite"), "--supernet-cache", str(cache / "supernets"), "-q", "-j", "1",
            "--dask", address]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stored(run: Path) -> int:
    try:
        with sqlite3.connect(run / "run.db", timeout=30) as connection:
            return connection.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    except sqlite3.Error:
        return 0


def when_stored(process: subprocess.Popen, run: Path, count: int) -> None:
    deadline = time.time() + 300
    while stored(run) < count:
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.time() < deadline, "no evaluations stored"
        time.sleep(0.2)


def front(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "pareto.csv")[["key", "accuracy", "expected_energy_pj"]]


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("dask")
    workload = folder / "tiny.yaml"
    workload.write_text(yaml.safe_dump(DASK_WORKLOAD))
    cluster = Cluster(workers=2)
    try:
        process = explore(workload, folder / "undisturbed", folder / "cache", cluster.address)
        out, err = process.communicate(timeout=900)
        assert process.returncode == 0, err[-3000:]
    finally:
        cluster.close()
    return workload, folder / "undisturbed", folder / "cache"


def test_a_worker_killed_mid_run_loses_and_repeats_nothing(undisturbed, tmp: Path):
    workload, reference, cache = undisturbed
    cluster = Cluster(workers=2)
    try:
        process = explore(workload, tmp / "run", cache, cluster.address)
        when_stored(process, tmp / "run", 2)
        killed(cluster.workers[0])  # mid-run: its evaluation in flight goes to the other worker
        out, err = process.communicate(timeout=900)
    finally:
        cluster.close()
    assert process.returncode == 0, err[-3000:]
    assert stored(tmp / "run") == stored(reference)  # none lost; the store keys each evaluation once
    with sqlite3.connect(tmp / "run" / "run.db") as connection:
        keys = [row[0] for row in connection.execute("SELECT spec_key FROM evaluations")]
    assert len(keys) == len(set(keys))
    pd.testing.assert_frame_equal(front(tmp / "run"), front(reference))


def test_a_scheduler_gone_mid_run_is_one_line_and_the_same_command_resumes(undisturbed, tmp: Path):
    workload, reference, cache = undisturbed
    cluster = Cluster(workers=1)
    try:
        process = explore(workload, tmp / "run", cache, cluster.address)
        when_stored(process, tmp / "run", 1)
        killed(cluster.scheduler)
        out, err = process.communicate(timeout=300)
    finally:
        cluster.close()
    lines = [line for line in err.splitlines() if line.strip()]
    assert process.returncode == 2 and len(lines) == 1, err[-3000:]
    assert "--dask" in lines[0] and "resume" in lines[0]
    kept = stored(tmp / "run")
    assert kept >= 1
    with sqlite3.connect(tmp / "run" / "run.db") as connection:
        assert connection.execute("PRAGMA quick_check").fetchone()[0] == "ok"

    again = Cluster(workers=2, port=cluster.port)
    try:
        process = explore(workload, tmp / "run", cache, again.address)
        out, err = process.communicate(timeout=900)
    finally:
        again.close()
    assert process.returncode == 0, err[-3000:]
    assert stored(tmp / "run") == stored(reference)
    pd.testing.assert_frame_equal(front(tmp / "run"), front(reference))
