"""`codesign explore`: search a workload's space on one accelerator and write the run's outputs.

The stages of a run, in order (each a function below; 4 and 5 in `codesign.runs.finalise`):
1. set up: load the accelerator and the dataset once, fit the space, record the configuration;
2. supernet: reuse the cached one for this space and dataset, or train it;
3. search: evaluate candidates (run store first, then the backend), every result stored as it finishes;
4. front: the non-dominated candidates that meet the constraints (validation figures);
5. finalise: fine-tune each returned network, measure it on test, export its ONNX and segments;
6. outputs: tables, plots and the summary, rebuilt from the run store.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from codesign.config.workload import Workload
from codesign.cost.cache import default_cache_path
from codesign.cost.engine import CostEngineStats
from codesign.evaluation.backends import Backend, WorkerPool, check_scheduler, make_backend
from codesign.evaluation.evaluator import Evaluator
from codesign.evaluation.result import CandidateResult
from codesign.network.supernet import default_supernet_dir
from codesign.runs.baseline import BASELINE_FOLDER
from codesign.runs.finalise import choose_front, finalise_front
from codesign.runs.identity import LOCK_NAME, RunLock, differences, refuse_other_run
from codesign.runs.outputs import (
    Reporter,
    write_comparison,
    write_config,
    write_outputs,
)
from codesign.runs.setup import RunSetup, prepare_run, prepare_space
from codesign.runs.store import STORE_NAME, RunConfig, RunStore
from codesign.search.objectives import pareto_front
from codesign.search.run import run_search
from codesign.search.surrogate_search import IterationReport
from codesign.spec import CandidateSpec


@dataclass(frozen=True)
class ExploreResult:
    run_dir: Path
    pareto: list[CandidateResult]
    candidates: list[CandidateResult]
    seconds: float
    zigzag_calls: int
    cache_hits: int


@dataclass
class _Counts:
    stored: int = 0
    new: int = 0
    generations: list[list[str]] = field(default_factory=list)
    stats: CostEngineStats = field(default_factory=CostEngineStats)  # ZigZag work, wherever it ran
    where: str = "this process"


def explore(
    workload: Workload,
    run_dir: Path,
    *,
    jobs: int = 1,
    cache_path: Path | None = None,
    progress: bool = True,
    report: Reporter = print,
    data_dir: Path | None = None,
    workers: int = 1,
    dask: str | None = None,
    supernet_dir: Path | None = None,
) -> ExploreResult:
    """Search, store, fine-tune and report. `jobs`: ZigZag processes for this process's cache misses;
    `workers` > 1: candidates are evaluated in that many local processes; `dask`: on a Dask cluster
    (scheduler address, or `local:N`); `cache_path`, `supernet_dir`: the layer-cost cache and the trained
    supernets' folder (defaults: in the user cache folder), each independent of the other."""
    setup = prepare_run(workload, data_dir)  # every input checked; nothing written yet
    if dask:
        check_scheduler(dask)
    cache_path = cache_path or default_cache_path()
    setup.check_mappable(cache_path)
    paths = _Caches(cache_path, supernet_dir or default_supernet_dir())
    return _explore(setup, run_dir, jobs, paths, progress, report, workers, dask)


@dataclass(frozen=True)
class _Caches:
    layer_costs: Path
    supernets: Path
    static_networks: Path | None = None  # fitted static networks, shared by a --baseline run's two searches


def _explore(
    setup: RunSetup,
    run_dir: Path,
    jobs: int,
    caches: _Caches,
    progress: bool,
    report: Reporter,
    workers: int,
    dask: str | None,
    pool: _SharedPool | None = None,
) -> ExploreResult:
    """`pool`: the local worker processes of an enclosing run (a --baseline run's two searches share
    them); this run's own otherwise."""
    import torch

    if pool is None:
        with _shared_pool(workers if not dask else 1) as own:
            return _explore(setup, run_dir, jobs, caches, progress, report, workers, dask, own)
    if caches.static_networks is None:
        caches = replace(caches, static_networks=run_dir / "weights" / "static")
    cache_path = caches.layer_costs

    start = time.perf_counter()
    workload = setup.workload
    torch.manual_seed(workload.search.seed)
    config = setup.config()
    with _claimed(run_dir, config, report, setup.target.earlier_fingerprints) as store:
        where = (
            f"Dask cluster {dask}"
            if dask
            else (f"{workers} worker processes" if workers > 1 else "this process")
        )
        resumed, dataset = len(store), setup.dataset
        store.set_cost_cache(cache_path)
        report(
            f"codesign explore: {workload.name} on {setup.target.name} | {len(dataset.train)}/{len(dataset.val)}/"
            f"{len(dataset.test)} train/val/test images | space of {setup.space.size():,} specs | evaluating in {where} "
            f"| run folder {run_dir}" + (f" | resuming with {resumed} stored evaluations" if resumed else "")
        )
        for line in config.memory_costs or []:  # energy and area that follow a memory's size
            report(f"memory cost from CACTI: {line}")
        seeds: list[CandidateSpec] = []
        if workload.search.baseline == "static" and setup.space.early_exits:
            # first: the static search, whose supernet is the early-exit networks' backbone and whose
            # returned networks start the early-exit search (so its front contains the static one)
            report(f"\nstatic baseline: the same space with every exit off, in {run_dir / BASELINE_FOLDER}")
            static = _explore(
                _static_baseline(setup),
                run_dir / BASELINE_FOLDER,
                jobs,
                caches,
                progress,
                report,
                workers,
                dask,
                pool,
            )
            seeds = [result.spec for result in static.pareto]
            report(
                f"\nearly exit: {workload.name}, seeded with the static baseline's {len(seeds)} returned networks"
            )
        supernet = setup.supernet(caches.supernets, report)
        recipe = setup.recipe(
            run_dir,
            cache_path,
            supernet,
            cost_jobs=jobs if workers <= 1 and not dask else 1,
            static_dir=caches.static_networks,
        )
        evaluator = setup.evaluator(recipe)
        engine = evaluator.engine
        # started after the supernet trained: its intra-op threads slow down badly beside busy processes
        backend = make_backend(recipe, evaluator, workers, dask, pool.get())
        try:
            counts = _search(setup, store, backend, evaluator, progress, report, seeds)
            front_keys = choose_front(store, report)
            static_run = run_dir / BASELINE_FOLDER if seeds else None
            finalise_front(setup, store, backend, run_dir, front_keys, progress, report, static_run)
        finally:
            backend.close()
            engine.close()
        del evaluator
        front = write_outputs(run_dir, store, report=report, cache_path=cache_path)
        if workload.compare_accelerators:
            write_comparison(run_dir, store, workload.compare_accelerators, cache_path, report)
        seconds = time.perf_counter() - start
        stats = counts.stats
        report(
            f"\nevaluations: {counts.new} new, {counts.stored} from the run store | ZigZag ({counts.where}): "
            f"{stats.zigzag_calls} layer evaluations ({stats.zigzag_seconds:.1f} s), "
            f"{stats.cache_hits} cache hits | wall time {seconds:.1f} s"
        )
        candidates = store.results()
    if engine.cache is not None:
        engine.cache.close()
    return ExploreResult(run_dir, front, candidates, seconds, stats.zigzag_calls, stats.cache_hits)


class _SharedPool:
    """Local worker processes started on first use (none for `workers` <= 1), shut down by `_shared_pool`."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool: WorkerPool | None = None

    def get(self) -> WorkerPool | None:
        if self.pool is None and self.workers > 1:
            self.pool = WorkerPool(self.workers)
        return self.pool


@contextmanager
def _shared_pool(workers: int) -> Iterator[_SharedPool]:
    shared = _SharedPool(workers)
    try:
        yield shared
    finally:
        if shared.pool is not None:
            shared.pool.close()


def _static_baseline(setup: RunSetup) -> RunSetup:
    """The same run with every exit off, on the accelerator and dataset already loaded (same seed, same splits)."""
    workload = replace(
        setup.workload,
        space=replace(setup.workload.space, early_exits=False),
        search=replace(setup.workload.search, baseline=None),
    )
    return RunSetup(
        workload,
        setup.target,
        setup.dataset,
        prepare_space(workload, setup.dataset, setup.target),
        setup.data_dir,
    )


@contextmanager
def _claimed(
    run_dir: Path, config: RunConfig, report: Reporter, same_hardware: tuple[str, ...] = ()
) -> Iterator[RunStore]:
    """The run folder, owned by this process: locked, checked to hold this run (or nothing yet), its
    configuration recorded. A run that fails before its first evaluation leaves nothing behind.
    `same_hardware`: fingerprints earlier versions recorded for this run's accelerator."""
    created = not run_dir.exists()
    existing = (run_dir / STORE_NAME).is_file()
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir)
    store: RunStore | None = None
    try:
        lock.acquire()
        store = RunStore(run_dir / STORE_NAME)
        stored = store.contents().config if existing else None  # every record readable before writing
        if stored is not None:
            refused, allowed = differences(stored, config, same_hardware)
            if refused:
                raise refuse_other_run(run_dir, refused)
            if allowed:
                report(
                    f"continuing {run_dir} with another search budget or constraints: {'; '.join(allowed)}"
                )
        store.set_config(config)
        write_config(run_dir, config)
        yield store
    except BaseException:
        if store is not None and not existing and len(store) == 0:
            store.close()
            store = None
            _remove_new_run(run_dir, created)
        raise
    finally:
        if store is not None:
            store.close()
        lock.release()
        if created and not existing and run_dir.exists() and not any(run_dir.iterdir()):
            run_dir.rmdir()


def _remove_new_run(run_dir: Path, created: bool) -> None:
    """What a run that never finished an evaluation wrote (the folder too, if the run made it)."""
    if created:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for name in (STORE_NAME, f"{STORE_NAME}-wal", f"{STORE_NAME}-shm", "config.json", LOCK_NAME):
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "weights", ignore_errors=True)


def _search(
    setup: RunSetup,
    store: RunStore,
    backend: Backend,
    evaluator: Evaluator,
    progress: bool,
    report: Reporter,
    seeds: list[CandidateSpec],
) -> _Counts:
    """Run the workload's search; every candidate comes from the run store or is evaluated (by `backend`)
    and stored. `seeds`: static networks the first population starts with."""
    from tqdm import tqdm

    settings = setup.workload.search
    bar = tqdm(
        total=settings.budget, desc="evaluating", unit="cand", disable=not progress, dynamic_ncols=True
    )
    in_process = backend.stats is evaluator.engine.stats
    counts = _Counts(stats=backend.stats, where="this process" if in_process else "evaluation workers")
    seen: list[CandidateResult] = []

    def evaluate_batch(specs: list[CandidateSpec]) -> list[CandidateResult]:
        keys = [spec.key() for spec in specs]
        results: dict[str, CandidateResult] = {}
        for key in keys:
            stored = store.get(key)
            if stored is not None:
                results[key] = stored
                counts.stored += 1
                bar.update(1)
        todo = list(dict.fromkeys(k for k in keys if k not in results))
        by_key = dict(zip(keys, specs, strict=True))
        for key, result in zip(todo, backend.map([by_key[k] for k in todo]), strict=True):
            store.put(result, key=key)  # written as soon as it is finished
            results[key] = result
            counts.new += 1
            bar.update(1)
        batch = [results[k] for k in keys]
        seen.extend(batch)
        counts.generations.append(keys)
        store.set_generations(counts.generations)
        front = pareto_front(seen, settings.objectives, settings.constraints)
        best = {  # validation: what the search sees
            "best_acc": f"{max(r.val.accuracy for r in front):.3f}" if front else "-",
            "min_energy_nJ": f"{min(r.expected_val.energy_pj for r in front) * 1e-3:.3g}" if front else "-",
        }
        bar.set_postfix(front=len(front), **best, zigzag=counts.stats.zigzag_calls)
        return batch

    rounds = store.surrogate_rounds()

    def on_surrogate_round(round_report: IterationReport) -> None:
        bar.write(round_report.line())
        if round_report.iteration > len(rounds):  # a resumed run retraces rounds it already stored
            rounds.append(round_report)
            store.set_surrogate_rounds(rounds)

    if settings.surrogate is not None:
        s = settings.surrogate
        report(
            f"surrogate-assisted search: {s.initial} initial evaluations, then {s.iterations} rounds of "
            f"{s.per_iteration}; predictors {', '.join(s.predictors)} chosen per objective by cross-validated Kendall tau"
        )
    try:
        run_search(setup.space, settings, evaluate_batch, on_surrogate_round, seeds)
    finally:
        bar.close()
    return counts
