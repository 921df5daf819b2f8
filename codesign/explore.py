"""`codesign explore`: search a workload's space on one accelerator and write the run's outputs."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from codesign.cost_cache import LayerCostCache
from codesign.cost_engine import CostEngine
from codesign.data import Dataset, load_dataset
from codesign.errors import CodesignError
from codesign.evaluator import CandidateResult, Evaluator, finalize, with_test
from codesign.export import export_qcdq, max_output_difference
from codesign.hardware import HardwareTarget, load_hardware
from codesign.report import atomic_write, plot_pareto, result_row, summary_lines, write_table
from codesign.search import pareto_front, run_nsga2
from codesign.store import RunStore
from codesign.supernet import load_or_train_supernet
from codesign.workload import SearchSpace, Workload


def default_cache_path() -> Path:
    base = os.environ.get("CODESIGN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "codesign"
    )
    return Path(base) / "layer_costs.sqlite"


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
    size = dataset.resolution
    for index, stage in enumerate(space.stages):
        size = (size + stage.stride - 1) // stage.stride
        if size < 2:
            raise CodesignError(
                f"{workload.source}: space.stages[{index}].stride: expected feature maps of at least 2x2 at every exit, "
                f"but {dataset.name}'s {dataset.resolution}x{dataset.resolution} input is down to {size}x{size} here"
            )
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
) -> ExploreResult:
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
        "training": asdict(workload.training),
        "cost": asdict(workload.cost),
        "search": asdict(workload.search),
    }
    store.set_meta("config", config)
    atomic_write(run_dir / "config.json", lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2)))
    report(
        f"codesign explore: {workload.name} on {target.name} | {len(dataset.train)}/{len(dataset.val)}/{len(dataset.test)} "
        f"train/val/test images | space of {space.size():,} specs | run folder {run_dir}"
        + (f" | resuming with {resumed} stored evaluations" if resumed else "")
    )
    cache_path = cache_path or default_cache_path()
    cache = LayerCostCache(cache_path)
    engine = CostEngine(target, workload.cost, cache, jobs=jobs)
    supernet_state = None
    if workload.training_mode == "supernet":
        supernet_state = load_or_train_supernet(
            space, dataset, workload.supernet, cache_path.parent / "supernets", report=report
        )
    evaluator = Evaluator(
        dataset,
        workload.training,
        engine,
        weights_dir=run_dir / "weights",
        base_overrides=dict(workload.hardware_overrides),
        supernet_state=supernet_state,
        finetune_config=workload.finetune,
        threshold_tuning=space.max_accuracy_drop if space.tune_thresholds else None,
    )
    total = workload.search.population * workload.search.generations
    bar = tqdm(total=total, desc="evaluating", unit="cand", disable=not progress, dynamic_ncols=True)
    seen: list[CandidateResult] = []

    def evaluate(spec):
        result = store.get(spec.key())
        if result is None:
            result = evaluator.evaluate(spec)
            store.put(result, key=spec.key())
        seen.append(result)
        bar.update(1)
        if len(seen) % 4 == 0:
            front = pareto_front(seen, workload.search.objectives)
            best = max(r.val.accuracy for r in front)  # validation: what the search sees
            bar.set_postfix(front=len(front), best_acc=f"{best:.3f}", zigzag=engine.stats.zigzag_calls)
        return result

    try:
        run_nsga2(space, workload.search, evaluate)
    finally:
        bar.close()
        engine.close()
    results = store.results()
    front = pareto_front(results, workload.search.objectives)
    onnx_dir = run_dir / "onnx"
    rows = []
    final_front = []
    fine_tune = workload.finetune.final_epochs > 0 and workload.training_mode == "supernet"
    if fine_tune:
        report(
            f"\nfine-tuning the {len(front)} returned networks ({workload.finetune.final_epochs} epochs of QAT each)"
        )
    for result in tqdm(front, desc="finalising", unit="net", disable=not progress):
        if fine_tune:
            result, model = finalize(evaluator, result)
        else:
            result, model = with_test(evaluator, result), evaluator.model(result.spec)
        final_front.append(result)
        path = export_qcdq(model, onnx_dir / f"{result.spec.key()}.onnx")
        row = result_row(result)
        row["onnx"] = str(path.relative_to(run_dir))
        row["onnx_max_abs_diff"] = max_output_difference(
            model, path, evaluator.split("test", result.spec.resolution).images[:64]
        )
        rows.append(row)
    front = final_front
    write_table(run_dir / "pareto.csv", rows)
    correlation = finetune_rank_correlation(front)
    store.set_meta("final", [r.to_dict() for r in front])
    final_by_key = {r.spec.key(): r for r in front}
    write_table(run_dir / "candidates.csv", [result_row(final_by_key.get(r.spec.key(), r)) for r in results])
    plot_pareto(run_dir / "pareto.png", front, results, target.name)
    seconds = time.perf_counter() - start
    report(f"\n{len(results)} candidates evaluated, {len(front)} on the Pareto front (test-split figures):")
    if correlation is not None:
        report(
            f"inherited vs fine-tuned test accuracy over the front: Kendall tau {correlation[0]:.2f}, "
            f"Spearman rho {correlation[1]:.2f} (n={len(front)})"
        )
    for line in summary_lines(front):
        report("  " + line)
    report(
        f"\nZigZag: {engine.stats.zigzag_calls} layer evaluations ({engine.stats.zigzag_seconds:.1f} s), "
        f"{engine.stats.cache_hits} cache hits | wall time {seconds:.1f} s"
    )
    report(f"wrote {run_dir}/pareto.csv, candidates.csv, pareto.png, onnx/ ({len(front)} files)")
    store.close()
    cache.close()
    return ExploreResult(run_dir, front, results, seconds, engine.stats.zigzag_calls, engine.stats.cache_hits)
