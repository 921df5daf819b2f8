"""The caches several runs share, under real processes: two explores at once on one layer-cost cache and one
supernet folder, a process killed while writing the cache, and a disk that fills up mid-run."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codesign.cost.cache import LayerCostCache
from codesign.runs.store import RunStore

WORKLOAD = """
name: shared-caches
dataset: digits
space:
  stages:
    - {depth: 1, width: [8, 16], stride: 1, weight_bits: [4, 8], act_bits: 8}
    - {depth: 1, width: 16, stride: 2, weight_bits: 8, act_bits: 8}
  exit_fractions: [0.3, 0.6]
training:
  supernet: {epochs: 1, batch_size: 64, random_subnets: 1}
  finetune: {head_steps: 5, final_epochs: 0.1}
cost: {lpf_limit: 2}
search: {population: 4, generations: 2, seed: 1}
"""
CODESIGN = [sys.executable, "-m", "codesign.cli.main"]


def explore(workload: Path, run: Path, caches: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*CODESIGN, "explore", "-w", str(workload), "--run-dir", str(run), "-q", "-j", "1", "--workers", "1",
         "--cost-cache", str(caches / "layer_costs.sqlite"), "--supernet-cache", str(caches / "supernets")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def cache_keys(path: Path) -> list[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        keys = [row[0] for row in connection.execute("SELECT key FROM layer_costs")]
    connection.close()
    return keys


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The workload run alone, with caches of its own: what every shared run must reproduce."""
    folder = tmp_path_factory.mktemp("reference")
    workload = folder / "w.yaml"
    workload.write_text(WORKLOAD)
    alone = explore(workload, folder / "run", folder / "caches")
    _, err = alone.communicate(timeout=600)
    assert alone.returncode == 0, err
    return {"workload": workload, "run": folder / "run", "cache": folder / "caches" / "layer_costs.sqlite"}


@pytest.mark.parametrize("repetition", range(3))
def test_two_explores_at_once_share_one_cost_cache_and_supernet_folder(reference, repetition: int, tmp: Path):
    caches = tmp / "caches"  # fresh each time: both runs train the supernet and fill the cache at once
    runs = [explore(reference["workload"], tmp / f"run{i}", caches) for i in range(2)]
    outcomes = [run.communicate(timeout=600) for run in runs]
    for run, (_, err) in zip(runs, outcomes, strict=True):
        assert run.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err
    keys = cache_keys(caches / "layer_costs.sqlite")
    assert len(keys) == len(set(keys))  # every layer row once
    assert set(keys) == set(cache_keys(reference["cache"]))  # none missing: the rows the run alone wrote
    supernets = sorted(p.name for p in (caches / "supernets").glob("*.pt"))
    assert supernets == sorted(p.name for p in (reference["cache"].parent / "supernets").glob("*.pt"))
    for i in range(2):  # a supernet trained twice, or read from the other run, is the same one: same results
        assert (tmp / f"run{i}" / "candidates.csv").read_text() == (reference["run"] / "candidates.csv").read_text()


WRITER = """
import sys, time
from codesign.cost.cache import LayerCostCache
from codesign.cost.layer_specs import gemm_layer
from codesign.cost.records import LayerCost
cache = LayerCostCache(sys.argv[1])
layer = gemm_layer("g", "stage0", input_shape=(1, 8), out_features=4, weights_constant=True, weight_bits=8,
                   act_bits=8, output_bits=8, partial_sum_bits=16, operand_source="input_from_layer", quantized=True)
cost = LayerCost(energy_pj=1.0, latency_cycles=2.0, mac_energy_pj=0.5, memory_energy_pj=0.5, ideal_cycles=1.0,
                 utilization=0.5)
batch = 0
while True:
    cache.put_many((f"{batch}-{i}" * 8, layer, "acc", cost) for i in range(400))
    batch += 1
    print(batch, flush=True)
"""


@pytest.mark.parametrize("kill", range(5))
def test_a_process_killed_while_writing_the_cost_cache_leaves_it_usable(kill: int, tmp: Path):
    path = tmp / "layer_costs.sqlite"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    for _ in range(2 + kill):  # a few batches committed, then killed in the middle of another
        assert writer.stdout is not None and writer.stdout.readline()
    time.sleep(0.003 * (kill + 1))
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    cache = LayerCostCache(path)
    rows = len(cache)
    assert rows >= (2 + kill) * 400 and rows % 400 == 0  # whole batches only: a transaction is all or nothing
    assert cache._connection.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    cache.close()


def test_a_full_disk_ends_in_one_line_and_the_run_resumes_where_it_stopped(reference, tmp: Path):
    disk = tmp / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"a small tmpfs cannot be mounted here: {mounted.stderr.decode().strip()}")
    try:
        caches = tmp / "caches"
        shutil.copytree(reference["cache"].parent, caches)  # warm caches: the run folder is what fills the disk
        # 160 KiB: the run store fills it during the search, after its first evaluations
        run = explore(reference["workload"], disk / "run", caches)
        _, err = run.communicate(timeout=600)
        assert run.returncode == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"codesign: error: {disk}"), err
        assert "No space left on device" in lines[0] or "disk is full" in lines[0], lines[0]
        moved = tmp / "moved"
        shutil.copytree(disk / "run", moved, ignore=shutil.ignore_patterns("run.lock"))
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    with RunStore.of_run(moved) as store:  # opens with SQLite's quick_check: intact
        kept = len(store)
    resumed = subprocess.run(
        [*CODESIGN, "explore", "--resume", str(moved), "-q", "-j", "1", "--workers", "1",
         "--cost-cache", str(caches / "layer_costs.sqlite"), "--supernet-cache", str(caches / "supernets")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert (moved / "candidates.csv").read_text() == (reference["run"] / "candidates.csv").read_text()
    with RunStore.of_run(moved) as store:
        assert len(store) >= kept
    assert os.listdir(disk) == []  # unmounted
