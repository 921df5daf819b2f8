"""Where candidates are evaluated: in this process, in local worker processes, or on a Dask cluster.

Every backend builds its evaluators from the same `EvaluatorRecipe`, so a candidate gets the same
result wherever it runs (same data, supernet checkpoint, accelerator, seeds, one PyTorch thread).
Results come back to the main process, which alone writes the run store; workers share the
layer-cost cache (SQLite, safe under concurrent writers) and the architecture weights folder.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import pickle
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from codesign.config.workload import SearchSpace, Workload
from codesign.cost.cache import LayerCostCache
from codesign.cost.engine import CostEngine
from codesign.data.splits import load_dataset
from codesign.evaluation.evaluator import CandidateResult, Evaluator
from codesign.hardware.target import load_hardware
from codesign.spec import CandidateSpec


@dataclass(frozen=True)
class EvaluatorRecipe:
    workload: Workload
    space: SearchSpace
    run_dir: Path
    cache_path: Path
    supernet_path: Path | None
    data_dir: Path | None
    cost_jobs: int = 1

    def key(self) -> str:
        return hashlib.sha256(pickle.dumps(self)).hexdigest()


def build_evaluator(recipe: EvaluatorRecipe) -> Evaluator:
    import torch

    workload = recipe.workload
    target = load_hardware(workload.accelerator, overrides=dict(workload.hardware_overrides))
    dataset = load_dataset(workload.dataset, seed=workload.training.seed, data_dir=recipe.data_dir)
    engine = CostEngine(target, workload.cost, LayerCostCache(recipe.cache_path), jobs=recipe.cost_jobs)
    state = (
        torch.load(recipe.supernet_path, map_location="cpu", weights_only=True)
        if recipe.supernet_path
        else None
    )
    return Evaluator(
        dataset,
        workload.training,
        engine,
        weights_dir=recipe.run_dir / "weights",
        base_overrides=dict(workload.hardware_overrides),
        supernet_state=state,
        finetune_config=workload.finetune,
        threshold_tuning=recipe.space.max_accuracy_drop if recipe.space.tune_thresholds else None,
        tuning_confidence=recipe.space.tuning_confidence,
    )


_WORKER_EVALUATORS: dict[str, Evaluator] = {}


def evaluate_in_worker(recipe: EvaluatorRecipe, spec: CandidateSpec) -> dict:
    """Evaluate one candidate in a worker process (its evaluator is built once per recipe and kept)."""
    import torch

    torch.set_num_threads(1)
    key = recipe.key()
    if key not in _WORKER_EVALUATORS:
        _WORKER_EVALUATORS[key] = build_evaluator(recipe)
    return _WORKER_EVALUATORS[key].evaluate(spec).to_dict()


class Backend(Protocol):
    def map(self, specs: list[CandidateSpec]) -> Iterator[CandidateResult]: ...

    def close(self) -> None: ...


class InProcessBackend:
    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator

    def map(self, specs: list[CandidateSpec]) -> Iterator[CandidateResult]:
        for spec in specs:
            yield self.evaluator.evaluate(spec)

    def close(self) -> None:
        return None


class ProcessBackend:
    """`workers` local processes (spawned, one PyTorch thread each)."""

    def __init__(self, recipe: EvaluatorRecipe, workers: int):
        self.recipe = recipe
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def map(self, specs: list[CandidateSpec]) -> Iterator[CandidateResult]:
        futures = [self.pool.submit(evaluate_in_worker, self.recipe, spec) for spec in specs]
        for future in futures:
            yield CandidateResult.from_dict(future.result())

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


class DaskBackend:
    """A Dask distributed cluster: `address` of a running scheduler, or `local:N` for a local cluster of N
    single-threaded worker processes (what the tests use)."""

    def __init__(self, recipe: EvaluatorRecipe, address: str):
        from distributed import Client, LocalCluster

        self.recipe = recipe
        self.cluster = None
        if address.startswith("local:"):
            workers = int(address.split(":", 1)[1] or 2)
            self.cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,
            )
            self.client = Client(self.cluster)
        else:
            self.client = Client(address)

    def map(self, specs: list[CandidateSpec]) -> Iterator[CandidateResult]:
        futures = self.client.map(evaluate_in_worker, [self.recipe] * len(specs), specs, pure=False)
        for future in futures:
            yield CandidateResult.from_dict(future.result())

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_backend(
    recipe: EvaluatorRecipe, evaluator_factory: Callable[[], Evaluator], workers: int, dask: str | None
) -> Backend:
    if dask:
        return DaskBackend(recipe, dask)
    if workers > 1:
        return ProcessBackend(recipe, workers)
    return InProcessBackend(evaluator_factory())
