"""Where candidates are evaluated: in this process, in local worker processes, or on a Dask cluster.

Every backend builds its evaluators from the same `EvaluatorRecipe`, so a candidate gets the same
result wherever it runs (same data, supernet checkpoint, accelerator, seeds, one PyTorch thread).
Results come back to the main process, which alone writes the run store; workers share the
layer-cost cache (SQLite, safe under concurrent writers) and the architecture weights folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import multiprocessing
import pickle
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from codesign.cost.cache import LayerCostCache
from codesign.cost.engine import CostEngine, CostEngineStats
from codesign.cost.settings import CostOptions
from codesign.data.registry import load_dataset
from codesign.data.splits import Dataset, DataSubset
from codesign.errors import CodesignError
from codesign.evaluation.evaluator import EvaluationSettings, Evaluator
from codesign.evaluation.result import CandidateResult
from codesign.hardware.target import HardwareTarget, load_hardware
from codesign.network.device import worker_device
from codesign.spec import CandidateSpec


@dataclass(frozen=True)
class EvaluatorRecipe:
    """Everything a process needs to build the run's evaluator itself (picklable, hashable)."""

    dataset: str
    data_dir: Path | None
    data_seed: int
    accelerator: str
    mapping: str | None
    hardware_overrides: tuple[tuple[str, Any], ...]
    cost_options: CostOptions
    settings: EvaluationSettings
    weights_dir: Path
    cache_path: Path
    supernet_path: Path | None
    cost_jobs: int = 1
    static_dir: Path | None = None  # static networks' fitted weights, shared by processes and searches
    data_subset: DataSubset = field(default_factory=DataSubset)  # the workload's `data:` (default: all)
    # weights fitted by any run of the same settings, kept there for later runs (None: this run's only)
    shared_weights_dir: Path | None = None

    def key(self) -> str:
        return hashlib.sha256(pickle.dumps(self)).hexdigest()


def build_evaluator(
    recipe: EvaluatorRecipe, dataset: Dataset | None = None, target: HardwareTarget | None = None
) -> Evaluator:
    """The recipe's evaluator; `dataset` and `target` are reused when the caller has loaded them already."""
    import torch

    overrides = dict(recipe.hardware_overrides)
    target = target or load_hardware(recipe.accelerator, recipe.mapping, overrides=overrides)
    dataset = dataset or load_dataset(
        recipe.dataset, seed=recipe.data_seed, data_dir=recipe.data_dir, subset=recipe.data_subset
    )
    engine = CostEngine(target, recipe.cost_options, LayerCostCache(recipe.cache_path), jobs=recipe.cost_jobs)
    state = (
        torch.load(recipe.supernet_path, map_location="cpu", weights_only=True)
        if recipe.supernet_path
        else None
    )
    return Evaluator(
        dataset,
        engine,
        recipe.settings,
        weights_dir=recipe.weights_dir,
        base_overrides=overrides,
        supernet_state=state,
        static_dir=recipe.static_dir,
        shared_dir=recipe.shared_weights_dir,
    )


_WORKER_EVALUATORS: dict[str, Evaluator] = {}
_WORKER_INDEX: int | None = None  # set in each process of a local pool (0, 1, ...)


def _number_worker(counter: Any) -> None:
    global _WORKER_INDEX
    with counter.get_lock():
        _WORKER_INDEX = counter.value
        counter.value += 1


def worker_evaluator(recipe: EvaluatorRecipe) -> Evaluator:
    """The recipe's evaluator in this worker process (built on first use, then kept)."""
    import torch

    torch.set_num_threads(1)
    if _WORKER_INDEX is not None:  # a local pool's worker: on a multi-GPU machine, a GPU of its own
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        device = worker_device(recipe.settings.device, _WORKER_INDEX, gpus)
        recipe = replace(recipe, settings=replace(recipe.settings, device=device))
    key = recipe.key()
    if key not in _WORKER_EVALUATORS:
        _WORKER_EVALUATORS[key] = build_evaluator(recipe)
    return _WORKER_EVALUATORS[key]


def with_worker_evaluator(recipe: EvaluatorRecipe, task: Callable[..., Any], *args: Any) -> Any:
    """`task(evaluator, *args)` with the recipe's evaluator of this worker process."""
    return task(worker_evaluator(recipe), *args)


def evaluate_in_worker(recipe: EvaluatorRecipe, spec: CandidateSpec) -> tuple[dict, CostEngineStats]:
    """Evaluate one candidate in a worker process (its evaluator is built once per recipe and kept); with
    the ZigZag work it took there, for the run's summary."""
    evaluator = worker_evaluator(recipe)
    before = replace(evaluator.engine.stats)
    result = evaluator.evaluate(spec).to_dict()
    after = evaluator.engine.stats
    spent = CostEngineStats(
        after.cache_hits - before.cache_hits,
        after.zigzag_calls - before.zigzag_calls,
        after.zigzag_seconds - before.zigzag_seconds,
    )
    return result, spent


class Backend(Protocol):
    """Evaluates candidates somewhere; `stats` sums the ZigZag work it caused, wherever it ran. `apply`
    runs other per-network work where the evaluations ran: `task(evaluator, *args)` for each args tuple
    (`task` a module-level function, its arguments and result picklable), results in order."""

    stats: CostEngineStats

    def map(self, specs: list[CandidateSpec]) -> Iterator[CandidateResult]: ...

    def apply(self, task: Callable[..., Any], arguments: list[tuple[Any, ...]]) -> Iterator[Any]: ...

    def close(self) -> None: ...


def _collect(stats: CostEngineStats, done: tuple[dict, CostEngineStats]) -> CandidateResult:
    result, spent = done
    stats.add(spent)
    return CandidateResult.from_dict(result)


class InProcessBackend:
    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator
        self.stats = evaluator.engine.stats

    def map(self, specs: list[CandidateSpec]) -> Iterator[CandidateResult]:
        for spec in specs:
            yield self.evaluator.evaluate(spec)

    def apply(self, task: Callable[..., Any], arguments: list[tuple[Any, ...]]) -> Iterator[Any]:
        for args in arguments:
            yield task(self.evaluator, *args)

    def close(self) -> None:
        return None


class WorkerPool:
    """`workers` local processes (spawned, one PyTorch thread each), kept for several backends in turn (a
    --baseline run's two searches share them)."""

    def __init__(self, workers: int):
        context = multiprocessing.get_context("spawn")
        self.workers = workers
        self.executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_number_worker,
            initargs=(context.Value("i", 0),),
        )

    def close(self) -> None:
        self.executor.shutdown(cancel_futures=True)


class ProcessBackend:
    """Local worker processes (a `WorkerPool`; with several GPUs, one GPU each)."""

    def __init__(self, recipe: EvaluatorRecipe, pool: WorkerPool, owns_pool: bool = False):
        """`owns_pool`: `close` shuts the pool down (else its starter does)."""
        self.recipe = recipe
        self.stats = CostEngineStats()
        self.pool = pool
        self.owns_pool = owns_pool

    def map(self, specs: list[CandidateSpec]) -> Iterator[CandidateResult]:
        futures = [self.pool.executor.submit(evaluate_in_worker, self.recipe, spec) for spec in specs]
        for future in futures:
            yield _collect(self.stats, future.result())

    def apply(self, task: Callable[..., Any], arguments: list[tuple[Any, ...]]) -> Iterator[Any]:
        submit = self.pool.executor.submit
        futures = [submit(with_worker_evaluator, self.recipe, task, *args) for args in arguments]
        for future in futures:
            yield future.result()

    def close(self) -> None:
        if self.owns_pool:
            self.pool.close()


def connect(address: str) -> Any:
    """A client of the Dask scheduler at `address`, or one line saying there is none."""
    from distributed import Client

    # distributed logs its reconnection attempts with tracebacks; a lost scheduler is reported in one line instead
    for name in [
        "distributed",
        *(n for n in logging.root.manager.loggerDict if n.startswith("distributed.")),
    ]:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        return Client(address, timeout="10s")
    except OSError as exc:
        raise CodesignError(
            f"--dask {address}: expected a running Dask scheduler there ({str(exc).splitlines()[0][:120]}); "
            "start one (dask scheduler) with workers, or use local:N"
        ) from None


def check_scheduler(address: str) -> None:
    """Fail before anything is written if a remote scheduler is not there."""
    if not address.startswith("local:"):
        connect(address).close()


class DaskBackend:
    """A Dask distributed cluster: `address` of a running scheduler, or `local:N` for a local cluster of N
    single-threaded worker processes (what the tests use). Each worker uses the device it is given: with
    `auto` or `cuda`, the first GPU it sees (dask-cuda gives each worker one through CUDA_VISIBLE_DEVICES)."""

    def __init__(self, recipe: EvaluatorRecipe, address: str):
        from distributed import Client, LocalCluster

        self.recipe = recipe
        self.stats = CostEngineStats()
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
            self.client = connect(address)
        self.address = address

    def map(self, specs: list[CandidateSpec]) -> Iterator[CandidateResult]:
        """Results as they finish. A worker lost mid-evaluation is Dask's to handle (its task runs again on
        another worker); a scheduler lost mid-run ends the run in one line, with every finished evaluation
        already in the run store for the same command to resume."""
        from distributed.client import FutureCancelledError
        from distributed.comm.core import CommClosedError

        futures = self.client.map(evaluate_in_worker, [self.recipe] * len(specs), specs, pure=False)
        for future in futures:
            try:
                result = future.result()
            except (
                CommClosedError,
                FutureCancelledError,
                asyncio.CancelledError,
            ) as exc:  # not the task's own
                raise CodesignError(
                    f"--dask {self.address}: expected the Dask scheduler to stay up, but it went away mid-run "
                    f"({type(exc).__name__}); finished evaluations are in the run store: run the same command "
                    "again to resume"
                ) from None
            yield _collect(self.stats, result)

    def apply(self, task: Callable[..., Any], arguments: list[tuple[Any, ...]]) -> Iterator[Any]:
        futures = [
            self.client.submit(with_worker_evaluator, self.recipe, task, *a, pure=False) for a in arguments
        ]
        for future in futures:
            yield future.result()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_backend(
    recipe: EvaluatorRecipe,
    evaluator: Evaluator,
    workers: int,
    dask: str | None,
    pool: WorkerPool | None = None,
) -> Backend:
    """Dask when `dask` is given, else `workers` > 1 local processes (`pool`, if started already), else
    this process's `evaluator`."""
    if dask:
        return DaskBackend(recipe, dask)
    if workers > 1:
        return (
            ProcessBackend(recipe, pool, False) if pool else ProcessBackend(recipe, WorkerPool(workers), True)
        )
    return InProcessBackend(evaluator)
