"""The end of a run: choose the networks to return (the constrained front on validation), then finalise each:
fine-tune it, measure it on test, export its ONNX and segments (`finalise_network`, one call per network)."""

from __future__ import annotations

import shutil
from pathlib import Path

from codesign.deploy.qcdq import compare_outputs, exit_metadata, export_qcdq
from codesign.deploy.segments import export_segments
from codesign.evaluation.backends import Backend
from codesign.evaluation.evaluator import Evaluator
from codesign.evaluation.finalize import finalize, with_test
from codesign.evaluation.result import CandidateResult
from codesign.exits import LearnedConfidence
from codesign.runs.outputs import Reporter, describe_constraints, pareto_keys
from codesign.runs.setup import RunSetup
from codesign.runs.store import STORE_NAME, FinalRecord, RunStore


def choose_front(store: RunStore, report: Reporter) -> list[str]:
    """The returned networks' keys: non-dominated and feasible on validation, stored as the run's front."""
    settings = store.search_settings()
    front_keys = pareto_keys(store.items(), settings.objectives, settings.constraints)
    if settings.constraints.active and not front_keys:
        report(
            f"\nno evaluated candidate meets the constraints ({describe_constraints(settings.constraints)}); "
            f"candidates.csv lists every candidate with its constraint values"
        )
    store.set_front(front_keys)
    return front_keys


def finalise_front(
    setup: RunSetup,
    store: RunStore,
    backend: Backend,
    run_dir: Path,
    front_keys: list[str],
    progress: bool,
    report: Reporter,
    static_run: Path | None = None,
) -> None:
    """Each returned network not finalised yet: fine-tuned (supernet mode), measured on test, exported, where
    the evaluations ran (`finalise_network`; with worker processes, several at once). A network without
    early exits that the static baseline run (`static_run`) already finalised is the same network: its
    record and files are taken from there, so both fronts hold the very same figures for it."""
    from tqdm import tqdm

    workload = setup.workload
    fine_tune = workload.finetune.final_epochs > 0 and workload.training_mode == "supernet"
    todo = [key for key in front_keys if not _finalised(store, run_dir, key)]
    if todo and fine_tune:
        report(
            f"\nfine-tuning {len(todo)} returned networks ({workload.finetune.final_epochs:g} epochs of QAT each)"
        )
    bar = tqdm(total=len(todo), desc="finalising", unit="net", disable=not progress)
    results = {}
    for key in todo:
        result = store.get(key)
        if result is None:
            bar.update(1)
            continue
        if (
            static_run is not None
            and result.num_exits == 1
            and _take_static_final(static_run, run_dir, store, key)
        ):
            bar.update(1)
            continue
        results[key] = result
    try:
        arguments = [(result, run_dir, fine_tune) for result in results.values()]
        for key, record in zip(results, backend.apply(finalise_network, arguments), strict=True):
            store.set_final(key, record)
            bar.update(1)
    finally:
        bar.close()


def finalise_network(
    evaluator: Evaluator, result: CandidateResult, run_dir: Path, fine_tune: bool
) -> FinalRecord:
    """One returned network: fine-tuned (`fine_tune`) or measured on test as it is, then exported to ONNX
    and to segments under `run_dir`, with its export checked against the model."""
    if fine_tune:
        result, model = finalize(evaluator, result)
    else:
        result, model = with_test(evaluator, result), evaluator.model(result.spec)
    # the same network with the thresholds its final measurement placed: the ONNX metadata and the
    # segmented model's manifest (name, spec, thresholds) then hold what pareto.csv reports
    model.spec = result.spec
    temperatures = result.val.temperatures or None
    path = export_qcdq(
        model,
        run_dir / "onnx" / f"{result.spec.key()}.onnx",
        metadata=exit_metadata(result.spec, temperatures),
    )
    comparison = compare_outputs(
        model, path, evaluator.split("test", result.spec.resolution).images[:256].cpu()
    )  # the model is back on the CPU for export; the split may live on a GPU
    policy_model = LearnedConfidence.from_dict(result.learned_policy) if result.learned_policy else None
    segments = export_segments(
        model,
        run_dir / "segments" / result.spec.key(),
        policy_model=policy_model,
        temperatures=temperatures,
    )
    return FinalRecord(
        result=result,
        onnx=str(path.relative_to(run_dir)),
        onnx_max_abs_diff=comparison.max_abs_diff,
        onnx_max_rel_diff=comparison.max_rel_diff,
        onnx_top1_agreement=comparison.top1_agreement,
        segments=str(segments.folder.relative_to(run_dir)),
    )


def _take_static_final(static_run: Path, run_dir: Path, store: RunStore, key: str) -> bool:
    """Copy the static run's final record of network `key` and its ONNX and segment files (False: none)."""
    if not (static_run / STORE_NAME).is_file():
        return False
    with RunStore.of_run(static_run) as static_store:
        final = static_store.final(key)
    if final is None or not (static_run / final.onnx).is_file() or not (static_run / final.segments).is_dir():
        return False
    (run_dir / final.onnx).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(static_run / final.onnx, run_dir / final.onnx)
    if (run_dir / final.segments).exists():
        shutil.rmtree(run_dir / final.segments)
    shutil.copytree(static_run / final.segments, run_dir / final.segments)
    store.set_final(key, final)
    return True


def _finalised(store: RunStore, run_dir: Path, key: str) -> bool:
    final = store.final(key)
    return final is not None and (run_dir / final.onnx).is_file()
