"""The literature presets (CIFAR-10 MobileNetV2, Zniber et al., EDANAS, AEBNAS) run end to end on a tiny CIFAR-10
file set in the official format, each through a workload that `extends` it with a small budget; device
selection on this machine (CPU; the CUDA cases run only where PyTorch sees a GPU)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from codesign.config.workload import load_workload
from codesign.errors import CodesignError
from codesign.network.device import resolve_device, worker_device
from tests.data.test_local import write_cifar_batch

PRESETS = ["cifar10_mobilenetv2", "zniber_cifar10", "edanas_cifar10", "aebnas_cifar10"]


SMALL_BUDGET = {
    "training": {
        "supernet": {"epochs": 1, "batch_size": 32, "head_epochs": 2},
        "finetune": {"calibration_images": 16, "head_steps": 1, "batch_size": 16, "final_epochs": 0.2},
    },
    "cost": {"lpf_limit": 2},
    "search": {"population": 2, "generations": 1},
}


def small_budget(preset: str) -> dict:
    """SMALL_BUDGET on top of the preset; a surrogate-assisted preset keeps its surrogate, at the smallest size."""
    budget = {**SMALL_BUDGET, "search": dict(SMALL_BUDGET["search"])}
    if load_workload(preset).search.surrogate is not None:
        budget["search"]["surrogate"] = {"initial": 4, "per_iteration": 1, "iterations": 1}
    return budget


def tiny_cifar10(root: Path, per_batch: int = 20, test: int = 30) -> Path:
    """The official layout (five training pickles and a test pickle, protocol 2) with random images."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for index in range(5):
        images = rng.integers(0, 256, size=(per_batch, 3, 32, 32), dtype=np.uint8)
        write_cifar_batch(folder / f"data_batch_{index + 1}", images, np.arange(per_batch) % 10, b"labels", 2)
    images = rng.integers(0, 256, size=(test, 3, 32, 32), dtype=np.uint8)
    write_cifar_batch(folder / "test_batch", images, np.arange(test) % 10, b"labels", 2)
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_cifar10(tmp_path_factory.mktemp("cifar"))


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_runs_end_to_end_on_a_tiny_cifar10(preset: str, data_dir: Path, tmp_path: Path):
    workload = tmp_path / "small.yaml"
    workload.write_text(
        yaml.safe_dump({"extends": preset, "name": f"{preset}-small", **small_budget(preset)})
    )
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "codesign.cli.main", "explore", "-w", str(workload), "--data-dir", str(data_dir),
         "--run-dir", str(run), "-q", "--cost-cache", str(data_dir / "layer_costs.sqlite")],
        capture_output=True, text=True, timeout=900, env={**os.environ, "CODESIGN_CACHE_DIR": str(data_dir / "cache")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = list(csv.DictReader((run / "pareto.csv").open()))
    assert rows and all(Path(run / row["onnx"]).is_file() for row in rows)
    expected = load_workload(preset)
    config = yaml.safe_load((run / "config.json").read_text())
    assert config["search"]["objectives"] == list(expected.search.objectives)
    assert config["accelerator"] == expected.accelerator
    assert config["augment"] == {"crop_padding": 4, "flip": True}
    if "macs" in expected.search.objectives:  # the MAC objective is what the search minimised
        assert all(float(row["expected_macs"]) > 0 for row in rows)


def test_extends_merges_mappings_and_replaces_the_rest(tmp_path: Path):
    child = tmp_path / "child.yaml"
    child.write_text(yaml.safe_dump({"extends": "edanas_cifar10", "search": {"generations": 3}}))
    workload, base = load_workload(child), load_workload("edanas_cifar10")
    assert workload.search.generations == 3 and workload.search.objectives == base.search.objectives
    assert workload.space == base.space and workload.augment == base.augment
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\n")
    with pytest.raises(CodesignError, match="extends"):
        load_workload(loop)


def test_device_selection_on_this_machine():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(CodesignError, match="expected auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(CodesignError, match="no CUDA GPU"):
            resolve_device("cuda:0")
    # one GPU per local worker on a multi-GPU machine; explicit choices as given
    assert [worker_device("auto", i, 2) for i in range(3)] == ["cuda:0", "cuda:1", "cuda:0"]
    assert worker_device("auto", 3, 0) == "auto" and worker_device("cuda:1", 0, 4) == "cuda:1"


def test_device_cuda_without_cuda_is_one_line(tmp_path: Path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = subprocess.run(
        [sys.executable, "-m", "codesign.cli.main", "explore", "--device", "cuda", "--run-dir", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "--device 'cuda'" in lines[0], done.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_matches_the_cpu_within_noise():
    from codesign.data.registry import load_dataset
    from codesign.network.settings import TrainingConfig
    from codesign.network.training import train_architecture
    from tests.conftest import tiny_spec

    dataset = load_dataset("digits")
    spec = tiny_spec()
    config = TrainingConfig(epochs=1)
    cpu = train_architecture(spec, dataset, config, device=torch.device("cpu")).state_dict
    gpu = train_architecture(spec, dataset, config, device=torch.device("cuda")).state_dict
    for key, value in cpu.items():
        assert gpu[key].device.type == "cpu"
        if value.is_floating_point():
            torch.testing.assert_close(gpu[key], value, rtol=1e-2, atol=1e-2)
