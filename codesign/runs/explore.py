"""`codesign explore`: search a workload's space on one accelerator and write the run's outputs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from codesign.evaluation.backends import EvaluatorRecipe, build_evaluator, make_backend
from codesign.cost.cache import default_cache_path
from codesign.data.splits import Dataset, load_dataset
from codesign.errors import CodesignError
from codesign.evaluation.evaluator import CandidateResult, finalize, with_test
from codesign.deploy.qcdq import compare_outputs, export_qcdq
from codesign.files import atomic_write
from codesign.hardware.target import HardwareTarget, load_hardware
from codesign.network.model import exit_pool_kernel, feature_map_sizes
from codesign.runs.plots import (
    plot_exit_breakdown,
    plot_hypervolume,
    plot_pareto,
    result_row,
    summary_lines,
    write_table,
)
from codesign.deploy.runtime import export_segments
from codesign.search.objectives import (
    constraint_values,
    feasible,
    hypervolume_by_generation_keys,
    pareto_front,
    run_search,
)
from codesign.spec import CandidateSpec
from codesign.runs.store import RunStore
from codesign.network.supernet import supernet_checkpoint
from codesign.search.surrogate_search import IterationReport
from codesign.network.training import TrainingConfig
from codesign.config.workload import Constraints, SearchSettings, SearchSpace, Workload, load_workload


def finetune_rank_correlation(front: list[CandidateResult]) -> tuple[float, float] | None:
    """How well the cheap (inherited) accuracy ranks the returned networks compared with fine-tuned accuracy."""
    pairs = [
        (r.test_accuracy_before_finetune, r.test.accuracy)
        for r in front
        if r.test_accuracy_before_finetune is not None
    ]
    if len(pairs) < 3:
        return None
    from scipy.stats import kendalltau, spearmanr

    before, after = zip(*pairs, strict=True)
    return float(kendalltau(before, after).statistic), float(spearmanr(before, after).statistic)


@dataclass(frozen=True)
class ExploreResult:
    run_dir: Path
    pareto: list[CandidateResult]
    candidates: list[CandidateResult]
    seconds: float
    zigzag_calls: int
    cache_hits: int


Reporter = Callable[[str], None]


def prepare_space(workload: Workload, dataset: Dataset, target: HardwareTarget) -> SearchSpace:
    """The workload's space with the dataset's shape and the accelerator's core count filled in."""
    space = replace(
        workload.space,
        num_classes=dataset.num_classes,
        in_channels=dataset.in_channels,
        resolution=dataset.resolution,
        cores=target.cores if workload.allocate_cores else 1,
    )
    sizes = feature_map_sizes(dataset.resolution, [stage.stride for stage in space.stages])
    for index, size in enumerate(sizes):
        if size < 2:
            raise CodesignError(
                f"{workload.source}: space.stages[{index}].stride: expected feature maps of at least 2x2 at every exit, "
                f"but {dataset.name}'s {dataset.resolution}x{dataset.resolution} input is down to {size}x{size} here"
            )
    # every map an exit pools: each stage's output, and an early one's halved by a strided conv head
    pooled = {(size, "space.exit_branches.pool") for size in sizes}
    pooled |= {
        (feature_map_sizes(size, [stride])[0], "space.exit_branches.stride")
        for size in sizes[:-1]
        for stride in space.branches.stride
        if stride > 1
    }
    for size, field_name in sorted(pooled):
        for grid in sorted({*space.branches.pool, space.final_branch.pool}):
            try:
                exit_pool_kernel(size, grid)
            except ValueError as exc:
                raise CodesignError(
                    f"{workload.source}: {field_name}: expected exits whose maps fit every pooling grid ({exc})"
                ) from None
    for path, choices in space.hardware:  # fail before any training if a searched value is invalid
        for choice in choices:
            load_hardware(
                target.accelerator_path,
                target.mapping_path,
                {**dict(workload.hardware_overrides), path: choice},
            )
    return space


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
) -> ExploreResult:
    """Search, store, fine-tune and report. `jobs`: ZigZag processes for this process's cache misses;
    `workers` > 1: candidates are evaluated in that many local processes; `dask`: on a Dask cluster
    (scheduler address, or `local:N`)."""
    from tqdm import tqdm

    start = time.perf_counter()
    torch.manual_seed(workload.search.seed)
    target = load_hardware(workload.accelerator, overrides=dict(workload.hardware_overrides))
    dataset = load_dataset(workload.dataset, seed=workload.training.seed, data_dir=data_dir)
    space = prepare_space(workload, dataset, target)
    run_dir.mkdir(parents=True, exist_ok=True)
    store = RunStore(run_dir / "run.db")
    resumed = len(store)
    config = {
        "workload": workload.name,
        "workload_file": workload.source,
        "dataset": dataset.name,
        "accelerator": target.name,
        "clock_mhz": target.clock_hz / 1e6,
        "cores": target.cores,
        "hardware_overrides": dict(workload.hardware_overrides),
        "hardware_search": {path: list(choices) for path, choices in space.hardware},
        "accelerator_file": str(target.accelerator_path),
        "mapping_file": str(target.mapping_path),
        "training_mode": workload.training_mode,
        "training": asdict(workload.training),
        "supernet": asdict(workload.supernet),
        "finetune": asdict(workload.finetune),
        "cost": asdict(workload.cost),
        "search": asdict(workload.search),
        "early_exits": space.early_exits,
    }
    store.set_meta("config", config)
    atomic_write(run_dir / "config.json", lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2)))
    where = (
        f"Dask cluster {dask}" if dask else (f"{workers} worker processes" if workers > 1 else "this process")
    )
    report(
        f"codesign explore: {workload.name} on {target.name} | {len(dataset.train)}/{len(dataset.val)}/{len(dataset.test)} "
        f"train/val/test images | space of {space.size():,} specs | evaluating in {where} | run folder {run_dir}"
        + (f" | resuming with {resumed} stored evaluations" if resumed else "")
    )
    cache_path = cache_path or default_cache_path()
    supernet_path = None
    if workload.training_mode == "supernet":
        supernet_path = supernet_checkpoint(
            space, dataset, workload.supernet, cache_path.parent / "supernets", report
        )
    recipe = EvaluatorRecipe(
        workload,
        space,
        run_dir,
        cache_path,
        supernet_path,
        data_dir,
        cost_jobs=jobs if workers <= 1 and not dask else 1,
    )
    evaluator = build_evaluator(recipe)
    engine = evaluator.engine
    backend = make_backend(recipe, lambda: evaluator, workers, dask)
    settings = workload.search
    total = settings.budget
    bar = tqdm(total=total, desc="evaluating", unit="cand", disable=not progress, dynamic_ncols=True)
    seen: list[CandidateResult] = []
    generation_keys: list[list[str]] = []
    counts = {"stored": 0, "new": 0}

    def evaluate_batch(specs: list[CandidateSpec]) -> list[CandidateResult]:
        keys = [spec.key() for spec in specs]
        results: dict[str, CandidateResult] = {}
        for key in keys:
            stored = store.get(key)
            if stored is not None:
                results[key] = stored
                counts["stored"] += 1
                bar.update(1)
        todo = list(dict.fromkeys(k for k in keys if k not in results))
        by_key = dict(zip(keys, specs, strict=True))
        for key, result in zip(todo, backend.map([by_key[k] for k in todo]), strict=True):
            store.put(result, key=key)  # written as soon as it is finished
            results[key] = result
            counts["new"] += 1
            bar.update(1)
        batch = [results[k] for k in keys]
        seen.extend(batch)
        generation_keys.append(keys)
        store.set_meta("generations", generation_keys)
        front = pareto_front(seen, settings.objectives, settings.constraints)
        best = {  # validation: what the search sees
            "best_acc": f"{max(r.val.accuracy for r in front):.3f}" if front else "-",
            "min_energy_nJ": f"{min(r.expected_val.energy_pj for r in front) * 1e-3:.3g}" if front else "-",
        }
        bar.set_postfix(front=len(front), **best, zigzag=engine.stats.zigzag_calls)
        return batch

    rounds: list[dict] = store.get_meta("surrogate", [])

    def on_surrogate_round(round_report: IterationReport) -> None:
        bar.write(round_report.line())
        if round_report.iteration > len(rounds):  # a resumed run retraces rounds it already stored
            rounds.append(asdict(round_report))
            store.set_meta("surrogate", rounds)

    if settings.surrogate is not None:
        s = settings.surrogate
        report(
            f"surrogate-assisted search: {s.initial} initial evaluations, then {s.iterations} rounds of "
            f"{s.per_iteration}; predictors {', '.join(s.predictors)} chosen per objective by cross-validated Kendall tau"
        )
    try:
        run_search(space, settings, evaluate_batch, on_surrogate_round)
    finally:
        bar.close()
        backend.close()
    items = store.items()
    front_keys = pareto_keys(items, settings.objectives, settings.constraints)
    if settings.constraints.active and not front_keys:
        report(
            f"\nno evaluated candidate meets the constraints ({describe_constraints(settings.constraints)}); "
            f"candidates.csv lists every candidate with its constraint values"
        )
    store.set_meta("front", front_keys)
    by_key = dict(items)
    fine_tune = workload.finetune.final_epochs > 0 and workload.training_mode == "supernet"
    todo = [k for k in front_keys if not _finalized(store, run_dir, k)]
    if todo and fine_tune:
        report(
            f"\nfine-tuning {len(todo)} returned networks ({workload.finetune.final_epochs:g} epochs of QAT each)"
        )
    try:
        for key in tqdm(todo, desc="finalising", unit="net", disable=not progress):
            result = by_key[key]
            if fine_tune:
                result, model = finalize(evaluator, result)
            else:
                result, model = with_test(evaluator, result), evaluator.model(result.spec)
            path = export_qcdq(model, run_dir / "onnx" / f"{result.spec.key()}.onnx")
            comparison = compare_outputs(
                model, path, evaluator.split("test", result.spec.resolution).images[:256]
            )
            segments = export_segments(model, run_dir / "segments" / result.spec.key())
            store.set_meta(
                f"final:{key}",
                {
                    "result": result.to_dict(),
                    "onnx": str(path.relative_to(run_dir)),
                    "onnx_max_abs_diff": comparison.max_abs_diff,
                    "onnx_max_rel_diff": comparison.max_rel_diff,
                    "onnx_top1_agreement": comparison.top1_agreement,
                    "segments": str(segments.folder.relative_to(run_dir)),
                },
            )
    finally:
        engine.close()
    front = write_outputs(run_dir, store, report=report)
    seconds = time.perf_counter() - start
    report(
        f"\nevaluations: {counts['new']} new, {counts['stored']} from the run store | ZigZag in this process: "
        f"{engine.stats.zigzag_calls} layer evaluations ({engine.stats.zigzag_seconds:.1f} s), "
        f"{engine.stats.cache_hits} cache hits | wall time {seconds:.1f} s"
    )
    store.close()
    if engine.cache is not None:
        engine.cache.close()
    return ExploreResult(
        run_dir, front, [r for _, r in items], seconds, engine.stats.zigzag_calls, engine.stats.cache_hits
    )


def _finalized(store: RunStore, run_dir: Path, key: str) -> bool:
    final = store.get_meta(f"final:{key}")
    return final is not None and (run_dir / final["onnx"]).is_file()


def describe_constraints(constraints: Constraints) -> str:
    parts = {
        "min_accuracy": f"validation accuracy >= {constraints.min_accuracy}",
        "max_latency_ms": f"worst-case latency <= {constraints.max_latency_ms} ms",
        "max_energy_uj": f"expected energy <= {constraints.max_energy_uj} uJ",
        "weights_on_chip": "weights fit on chip",
    }
    return ", ".join(parts[name] for name in constraints.active) or "none"


def pareto_keys(
    items: list[tuple[str, CandidateResult]],
    objectives: tuple[str, ...],
    constraints: Constraints | None = None,
) -> list[str]:
    front = pareto_front([r for _, r in items], objectives, constraints)
    chosen = {id(r) for r in front}
    order = {id(r): i for i, r in enumerate(front)}
    return [
        k for k, r in sorted(((k, r) for k, r in items if id(r) in chosen), key=lambda kr: order[id(kr[1])])
    ]


def stored_workload(run_dir: Path, workload_name: str | None = None) -> Workload:
    """The workload and settings a run was started with (from its folder), unless one is given explicitly."""
    config_path = run_dir / "config.json"
    if not (run_dir / "run.db").is_file() or not config_path.is_file():
        raise CodesignError(f"{run_dir}: run.db: expected a run folder written by `codesign explore`")
    config = json.loads(config_path.read_text())
    workload = load_workload(workload_name or config["workload_file"])
    if workload_name:
        return workload
    training = dict(config["training"])
    if training.get("exit_loss_weights") is not None:
        training["exit_loss_weights"] = tuple(training["exit_loss_weights"])
    return replace(
        workload,
        accelerator=config["accelerator_file"],
        hardware_overrides=tuple(config.get("hardware_overrides", {}).items()),
        training=TrainingConfig(**training),
        search=SearchSettings.from_dict(config["search"]),
        space=replace(workload.space, early_exits=config.get("early_exits", True)),
    )


def _stored_settings(store: RunStore) -> SearchSettings:
    config = store.get_meta("config", {})
    return SearchSettings.from_dict(config["search"]) if "search" in config else SearchSettings()


def _stored_finals(store: RunStore) -> dict[str, dict]:
    """The stored final record (fine-tuned result, ONNX paths) of each returned network, in front order."""
    finals = {}
    for key in store.get_meta("front", []):
        final = store.get_meta(f"final:{key}")
        if final is not None:
            finals[key] = final
    return finals


def write_outputs(run_dir: Path, store: RunStore, report: Reporter = print) -> list[CandidateResult]:
    """Every table and plot of a run, rebuilt from its run store alone (`codesign report`)."""
    settings = _stored_settings(store)
    objectives, constraints = settings.objectives, settings.constraints
    items = store.items()
    rows = []
    front: list[CandidateResult] = []
    finals: dict[str, CandidateResult] = {}
    for key, final in _stored_finals(store).items():
        result = CandidateResult.from_dict(final["result"])
        finals[key] = result
        front.append(result)
        rows.append(
            {
                **result_row(result),
                "onnx": final["onnx"],
                "onnx_max_abs_diff": final["onnx_max_abs_diff"],
                "onnx_max_rel_diff": final.get("onnx_max_rel_diff"),
                "onnx_top1_agreement": final.get("onnx_top1_agreement"),
                "segments": final.get("segments", ""),
            }
        )
    write_table(run_dir / "pareto.csv", rows)
    broken = [r for r in front if not feasible(r, constraints)]
    if broken:
        report(
            f"note: {len(broken)} returned network(s) no longer meet the constraints after the final fine-tuning "
            f"({describe_constraints(constraints)}); candidates.csv marks them (feasible = False)"
        )
    write_table(run_dir / "candidates.csv", _candidate_rows(items, finals, constraints))
    rounds = store.get_meta("surrogate", [])
    if rounds:
        write_table(run_dir / "surrogate.csv", surrogate_rows(rounds))
    results = [r for _, r in items]
    accelerators = sorted({r.accelerator for r in results})
    plot_pareto(
        run_dir / "pareto.png",
        front,
        results,
        ", ".join(accelerators[:3]) + ("..." if len(accelerators) > 3 else ""),
    )
    if front:
        plot_exit_breakdown(run_dir / "exit_costs.png", front)
    generations = store.get_meta("generations", [])
    if generations:
        keys = [k for k, _ in items]  # results may carry tuned specs: match by the keys the search asked for
        volumes = hypervolume_by_generation_keys(
            keys, [r for _, r in items], generations, objectives, constraints
        )
        write_table(
            run_dir / "hypervolume.csv",
            [{"generation": g + 1, "hypervolume": v} for g, v in enumerate(volumes)],
        )
        plot_hypervolume(run_dir / "hypervolume.png", volumes, objectives)
    correlation = finetune_rank_correlation(front)
    report(f"\n{len(items)} candidates evaluated, {len(front)} on the Pareto front (test-split figures):")
    if correlation is not None:
        report(
            f"inherited vs fine-tuned test accuracy over the front: Kendall tau {correlation[0]:.2f}, "
            f"Spearman rho {correlation[1]:.2f} (n={len(front)})"
        )
    for line in summary_lines(front):
        report("  " + line)
    report(
        f"wrote {run_dir}/pareto.csv, candidates.csv, pareto.png, exit_costs.png, hypervolume.png, onnx/ ({len(front)} files)"
    )
    return front


def _candidate_rows(
    items: list[tuple[str, CandidateResult]], finals: dict[str, CandidateResult], constraints: Constraints
) -> list[dict]:
    rows = []
    for k, r in items:
        shown = finals.get(k, r)  # a returned network: its figures after the final fine-tuning
        violations = constraint_values(shown, constraints)
        rows.append(
            {
                **result_row(shown),
                "search_key": k,
                **{f"{name}_violation": v for name, v in zip(constraints.active, violations, strict=True)},
                "feasible": all(v <= 0 for v in violations),
                "pareto": k in finals,
            }
        )
    return rows


def load_run(run_dir: str | Path) -> pd.DataFrame:
    """Every candidate of a run folder as a table (the columns of candidates.csv), read from its run store.

    Returned networks carry their final (fine-tuned, test-split) figures and `pareto` is True for them."""
    path = Path(run_dir) / "run.db"
    if not path.is_file():
        raise CodesignError(f"{run_dir}: run.db: expected a run folder written by `codesign explore`")
    store = RunStore(path)
    try:
        finals = {k: CandidateResult.from_dict(f["result"]) for k, f in _stored_finals(store).items()}
        return pd.DataFrame(_candidate_rows(store.items(), finals, _stored_settings(store).constraints))
    finally:
        store.close()


def surrogate_rows(rounds: list[dict]) -> list[dict]:
    """Predictor quality per surrogate round: chosen kind, its cross-validated and out-of-sample Kendall tau."""
    rows = []
    for r in rounds:
        for target, kind in r["chosen"].items():
            rows.append(
                {
                    "round": r["iteration"],
                    "archive_size": r["archive_size"],
                    "target": target,
                    "predictor": kind,
                    "cv_kendall_tau": r["all_cv_tau"][target][kind],
                    "new_points_kendall_tau": r["new_tau"][target],
                    **{f"cv_tau_{k}": v for k, v in r["all_cv_tau"][target].items()},
                }
            )
    return rows
