from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from codesign.data.digits import load_digits_dataset
from codesign.hardware.target import load_hardware
from codesign.network.model import build_model, load_shared_weights
from codesign.network.settings import TrainingConfig
from codesign.network.training import train_architecture
from codesign.spec import CandidateSpec, StageSpec

warnings.filterwarnings("ignore")
# Nothing a test computes lands in the user's own cache folder (layer costs, supernets) unless it names one;
# each test process (pytest-xdist worker) has its own, so none waits on another's SQLite writes or supernets.
# Each pytest-xdist worker on a core of its own: the threads and processes codesign starts follow the cores a
# process may use (`codesign.machine`), so two workers never oversubscribe the machine.
if os.environ.get("PYTEST_XDIST_WORKER") and hasattr(os, "sched_setaffinity"):
    _cores = sorted(os.sched_getaffinity(0))
    if len(_cores) > 1 and int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        os.sched_setaffinity(
            0, {_cores[int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw")) % len(_cores)]}
        )
if "CODESIGN_CACHE_DIR" not in os.environ or os.environ.get("CODESIGN_TEST_OWN_CACHE"):
    _process = os.environ.get("PYTEST_XDIST_WORKER", "main")
    os.environ["CODESIGN_CACHE_DIR"] = tempfile.mkdtemp(prefix=f"codesign-test-cache-{_process}-")
    os.environ["CODESIGN_TEST_OWN_CACHE"] = "1"
torch.set_num_threads(1)


def tiny_spec(
    exits: tuple[bool, bool] = (True, True), bits: tuple[int, int, int] = (4, 8, 4)
) -> CandidateSpec:
    return CandidateSpec(
        stages=(
            StageSpec(depth=1, width=8, kernel=3, stride=1, weight_bits=bits[0], act_bits=bits[0]),
            StageSpec(depth=1, width=16, kernel=3, stride=2, weight_bits=bits[1], act_bits=bits[1]),
            StageSpec(depth=1, width=16, kernel=3, stride=2, weight_bits=bits[2], act_bits=bits[2]),
        ),
        exits=exits,
        thresholds=(0.2, 0.2),
        num_classes=10,
        in_channels=1,
        resolution=8,
    )


def explore_argv(workload: Path, run: Path, cost_cache: Path, *extra: str) -> list[str]:
    """`codesign explore` of `workload` into the run folder `run`, with its own layer-cost cache and supernets."""
    return [
        "explore", "-w", str(workload), "--run-dir", str(run), "--cost-cache", str(cost_cache),
        "--supernet-cache", str(cost_cache.parent / "supernets"), *extra,
    ]  # fmt: skip


@pytest.fixture(scope="session")
def digits():
    return load_digits_dataset()


@pytest.fixture(scope="session")
def trained_tiny(digits):
    spec = tiny_spec()
    trained = train_architecture(spec, digits, TrainingConfig(epochs=4, seed=0))
    return spec, trained


@pytest.fixture()
def tiny_model(trained_tiny):
    spec, trained = trained_tiny
    return load_shared_weights(build_model(spec), trained.state_dict)


@pytest.fixture(scope="session")
def edge_tpu():
    return load_hardware("edge_tpu_like")


@pytest.fixture()
def tmp(tmp_path: Path) -> Path:
    return tmp_path


def float_network(path: Path, width: int = 32, flat: int = 64) -> Path:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, flat, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(flat * 8 * 8, 10),
    )
    torch.onnx.export(net, torch.zeros(1, 3, 16, 16), str(path), dynamo=False, opset_version=13)
    return path


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return float_network(tmp_path_factory.mktemp("net") / "net.onnx")
