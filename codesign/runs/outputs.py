"""A run's tables and terminal summary, rebuilt from its run store alone (`codesign report`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from codesign.evaluation.result import CandidateResult
from codesign.files import atomic_write, atomic_write_text
from codesign.runs.baseline import BASELINE_FOLDER, compare_fronts
from codesign.runs.baseline import summary as baseline_summary
from codesign.runs.html_report import write_html_report
from codesign.runs.plots import plot_exit_breakdown, plot_hypervolume, plot_pareto
from codesign.runs.store import STORE_NAME, RunConfig, RunStore
from codesign.search.objectives import (
    constraint_values,
    feasible,
    hypervolume_by_generation_keys,
    pareto_front,
)
from codesign.search.settings import Constraints
from codesign.search.surrogate_search import IterationReport

Reporter = Callable[[str], None]


def result_row(result: CandidateResult, searched: CandidateResult | None = None) -> dict[str, Any]:
    """One table row. Accuracy, exit fractions and expected costs are on the split named in `split`
    (test whenever the candidate was evaluated on it: always for the Pareto set). `_val` columns are the
    validation figures the search saw (`searched`: the search-time result of a network that was then
    fine-tuned; its validation accuracy after fine-tuning is `accuracy_val_after_finetune`)."""
    seen = searched or result
    spec = result.spec
    stats, expected, static_accuracy = result.reported
    on_test = result.test is not None
    return {
        "key": spec.key(),
        "accelerator": result.accelerator,
        "hardware": spec.describe_hardware(),
        "backbone": spec.describe(),
        "num_exits": result.num_exits,
        "exit_stages": " ".join(str(s) for s in spec.active_exit_stages),
        "thresholds": " ".join(f"{t:g}" for t in spec.active_thresholds),
        "weight_bits": " ".join(str(s.weight_bits) for s in spec.stages),
        "act_bits": " ".join(str(s.act_bits) for s in spec.stages),
        "split": "test" if on_test else "val",
        "accuracy": stats.accuracy,
        "accuracy_before_finetune": result.test_accuracy_before_finetune,
        "accuracy_finetuned_search_thresholds": result.test_accuracy_finetuned_search_thresholds,
        "exits": spec.describe_exits(),
        "exit_fractions": " ".join(f"{f:.3f}" for f in stats.fractions),
        # each active exit's own classifier on every input of the split, its calibration error (15 bins,
        # after and before its temperature) and its temperature
        "exit_accuracies": " ".join(f"{a:.4f}" for a in stats.exit_accuracies),
        "exit_calibration_errors": " ".join(f"{e:.4f}" for e in stats.calibration_errors) or None,
        "exit_calibration_errors_raw": " ".join(f"{e:.4f}" for e in stats.calibration_errors_raw) or None,
        "exit_temperatures": " ".join(f"{t:.4g}" for t in stats.temperatures) or None,
        "expected_energy_pj": expected.energy_pj,
        "expected_latency_cycles": expected.latency_cycles,
        "expected_latency_s": result.seconds(expected.latency_cycles),
        "edp_j_s": result.edp(expected),
        "worst_latency_cycles": expected.worst_latency_cycles,
        "expected_macs": expected.macs,
        "weight_bytes": result.weight_bytes,
        "chip_area": result.chip_area,  # from the accelerator file's area fields (empty: it states none)
        "static_accuracy": static_accuracy,
        "static_energy_pj": result.static.energy_pj,
        "static_latency_cycles": result.static.latency_cycles,
        "energy_vs_static": expected.energy_pj / result.static.energy_pj,
        "costs_more_than_static": expected.energy_pj > result.static.energy_pj * (1 + 1e-9),
        "accuracy_vs_static": stats.accuracy - static_accuracy if static_accuracy is not None else None,
        "latency_vs_static": expected.latency_cycles / result.static.latency_cycles,
        "exit_overhead_pj": expected.exit_overhead_pj,
        "oracle_accuracy": result.oracle_test.accuracy if result.oracle_test else None,
        "oracle_exit_fractions": " ".join(f"{f:.3f}" for f in result.oracle_test.fractions)
        if result.oracle_test
        else None,
        "oracle_energy_pj": result.expected_oracle_test.energy_pj if result.expected_oracle_test else None,
        "energy_vs_oracle": expected.energy_pj / result.expected_oracle_test.energy_pj
        if result.expected_oracle_test and on_test
        else None,
        "weight_bytes_on_chip": result.weight_bytes_on_chip,
        "weight_bytes_streamed": result.weight_bytes_streamed,
        "weight_load_energy_pj": result.weight_load_energy_pj,
        "weight_load_cycles": result.weight_load_cycles,
        "per_exit_energy_pj": " ".join(f"{e.energy_pj:.4g}" for e in result.exits),
        "per_exit_latency_cycles": " ".join(f"{e.latency_cycles:.6g}" for e in result.exits),
        "accuracy_val": seen.val.accuracy,
        "exit_fractions_val": " ".join(f"{f:.3f}" for f in seen.val.fractions),
        "expected_energy_pj_val": seen.expected_val.energy_pj,
        "expected_latency_cycles_val": seen.expected_val.latency_cycles,
        "thresholds_val": " ".join(f"{t:g}" for t in seen.spec.active_thresholds),
        "accuracy_val_after_finetune": result.val.accuracy if searched is not None else None,
    }


def write_table(path: Path, rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
    return frame


NOTATION = (
    "notation: backbone stages as [res|mb<e>]d<depth>w<width>k<kernel>/W<weight bits>A<activation bits> (res: "
    "residual basic block, mb<e>: inverted residual with expansion e, none: conv); exits as <stage>:p<pool grid> "
    "or <stage>:c<convs>x<channels>k<kernel>p<pool> @<exit policy>; static: the same backbone with its exits off; "
    "oracle: each input out at the first exit that is right, a bound no policy reaches"
)


def summary_lines(front: list[CandidateResult], limit: int = 8) -> list[str]:
    """The returned networks, most accurate first; beyond `limit`, the most accurate and the cheapest are
    always among those shown. Beside each cost ratio, the accuracy it is bought with."""
    by_accuracy = sorted(front, key=lambda r: (-r.test.accuracy, r.expected_test.energy_pj))
    cheapest = min(front, key=lambda r: r.expected_test.energy_pj) if front else None
    shown = by_accuracy[:limit]
    if cheapest is not None and all(r is not cheapest for r in shown):
        shown = [*shown[: limit - 1], cheapest]
    lines = [
        f"  {'acc%':>5} {'vs static':>9} {'exits':>5} {'fractions':>18} {'E[nJ]':>9} {'static':>9} {'E/static':>8} "
        f"{'E/oracle':>8} {'lat[cyc]':>9}  backbone"
    ]
    flagged = 0
    for r in shown:
        oracle = r.expected_oracle_test
        vs_oracle = f"{r.expected_test.energy_pj / oracle.energy_pj:8.2f}" if oracle else f"{'-':>8}"
        worse = r.expected_test.energy_pj > r.static.energy_pj * (1 + 1e-9)
        flagged += worse
        gap = (
            f"{100 * (r.test.accuracy - r.static_test_accuracy):+8.1f}p"
            if r.static_test_accuracy is not None
            else f"{'-':>9}"
        )
        marks = ("!" if worse else " ") + ("$" if r is cheapest else " ")
        lines.append(
            f"{marks}{100 * r.test.accuracy:5.1f} {gap} {r.num_exits:5d} {' '.join(f'{f:.2f}' for f in r.test.fractions):>18} "
            f"{r.expected_test.energy_pj / 1e3:9.1f} {r.static.energy_pj / 1e3:9.1f} "
            f"{r.expected_test.energy_pj / r.static.energy_pj:8.2f} {vs_oracle} {r.expected_test.latency_cycles:9.0f}  "
            f"{r.spec.describe()}  exits {r.spec.describe_exits()}"
        )
        lines.append(f"{'':7}{per_exit_line(r)}")
    if len(front) > len(shown):
        lines.append(f"... {len(front) - len(shown)} more in pareto.csv (every one in report.html)")
    lines.append(
        "$: the cheapest; vs static: test accuracy minus the static counterpart's, in points; E/oracle: expected "
        "energy over the oracle's at the same accuracy; per exit: its own test accuracy, the share of test inputs "
        "it takes (the oracle's), its expected calibration error after temperature scaling (before)"
    )
    if flagged:
        lines.append(
            f"! {flagged} network{'s' if flagged > 1 else ''} cost more than {'their' if flagged > 1 else 'its'} own "
            "static counterpart (the same backbone with its exits off): early exit does not pay there"
        )
    lines.append(NOTATION)
    return lines


def per_exit_line(result: CandidateResult) -> str:
    """Each exit of a network on test: its own accuracy, the share of inputs it takes (the oracle's in
    brackets) and its calibration error after its temperature (before it in brackets)."""
    stats = result.test or result.val
    oracle = result.oracle_test.fractions if result.oracle_test else None
    parts = []
    for k, stage in enumerate(result.spec.active_exit_stages):
        text = (
            f"exit {stage}: acc {100 * stats.exit_accuracies[k]:.1f}% takes {100 * stats.fractions[k]:.0f}%"
        )
        if oracle is not None:
            text += f" (oracle {100 * oracle[k]:.0f}%)"
        if stats.calibration_errors:
            text += f" ECE {stats.calibration_errors[k]:.3f} (raw {stats.calibration_errors_raw[k]:.3f})"
        parts.append(text)
    return "; ".join(parts)


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
    if len(set(before)) < 2 or len(set(after)) < 2:
        return None  # all tied: no ranking to compare
    return float(kendalltau(before, after).statistic), float(spearmanr(before, after).statistic)


def describe_constraints(constraints: Constraints) -> str:
    parts = {
        "min_accuracy": f"validation accuracy >= {constraints.min_accuracy}",
        "max_latency_ms": f"worst-case latency <= {constraints.max_latency_ms} ms",
        "max_energy_uj": f"expected energy <= {constraints.max_energy_uj} uJ",
        "max_exit_overhead_uj": f"exit overhead <= {constraints.max_exit_overhead_uj} uJ",
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


def write_config(run_dir: Path, config: RunConfig) -> None:
    """`config.json`: a readable copy of the run's configuration (the run store stays the source of truth)."""
    atomic_write_text(run_dir / "config.json", json.dumps(config.to_dict(), indent=2))


def write_outputs(
    run_dir: Path, store: RunStore, report: Reporter = print, cache_path: Path | None = None
) -> list[CandidateResult]:
    """Every table and plot of a run and its `report.html`, rebuilt from its run store alone (`codesign
    report`); `cache_path`: the layer-cost cache the page's per-layer costs are read from."""
    contents = store.contents()
    objectives, constraints = contents.settings.objectives, contents.settings.constraints
    if contents.config is not None:
        write_config(run_dir, contents.config)
    items = contents.items
    searched = dict(items)
    rows = []
    front: list[CandidateResult] = []
    finals: dict[str, CandidateResult] = {}
    for key, final in contents.finals.items():
        finals[key] = final.result
        front.append(final.result)
        rows.append(
            {
                **result_row(final.result, searched.get(key)),
                "onnx": final.onnx,
                "onnx_max_abs_diff": final.onnx_max_abs_diff,
                "onnx_max_rel_diff": final.onnx_max_rel_diff,
                "onnx_top1_agreement": final.onnx_top1_agreement,
                "segments": final.segments,
            }
        )
    write_table(run_dir / "pareto.csv", rows)
    written = ["pareto.csv", "candidates.csv", "pareto.png"]
    broken = [r for r in front if not feasible(r, constraints)]
    if broken:
        report(
            f"note: {len(broken)} returned network(s) no longer meet the constraints after the final fine-tuning "
            f"({describe_constraints(constraints)}); candidates.csv marks them (feasible = False)"
        )
    write_table(run_dir / "candidates.csv", _candidate_rows(items, finals, constraints))
    rounds = contents.surrogate_rounds
    if rounds:
        write_table(run_dir / "surrogate.csv", surrogate_rows(rounds))
        written.append("surrogate.csv")
    results = [r for _, r in items]
    accelerators = sorted({r.accelerator for r in results})
    static_front = _baseline_front(run_dir)
    if static_front is not None:
        rows = compare_fronts(front, static_front)
        write_table(run_dir / "baseline.csv", [row.row() for row in rows])
        written.append("baseline.csv")
        for line in baseline_summary(rows):
            report(line)
    plot_pareto(
        run_dir / "pareto.png",
        front,
        results,
        ", ".join(accelerators[:3]) + ("..." if len(accelerators) > 3 else ""),
        static_front or [],
    )
    if front:
        plot_exit_breakdown(run_dir / "exit_costs.png", front)
        written.append("exit_costs.png")
    generations = contents.generations
    volumes: list[float] = []
    if generations:
        keys = [k for k, _ in items]  # results may carry tuned specs: match by the keys the search asked for
        volumes = hypervolume_by_generation_keys(keys, results, generations, objectives, constraints)
        write_table(
            run_dir / "hypervolume.csv",
            [{"generation": g + 1, "hypervolume": v} for g, v in enumerate(volumes)],
        )
        plot_hypervolume(run_dir / "hypervolume.png", volumes, objectives)
        written += ["hypervolume.csv", "hypervolume.png"]
    page = write_html_report(run_dir, contents, static_front, volumes, cache_path)
    written.append(f"{page.path.name} ({page.size_bytes / 1e6:.1f} MB, opens offline)")
    for note in page.notes:
        report(f"note: report.html: {note}")
    correlation = finetune_rank_correlation(front)
    report(f"\n{len(items)} candidates evaluated, {len(front)} on the Pareto front (test-split figures):")
    if correlation is not None and all(value == value for value in correlation):  # NaN: every accuracy tied
        report(
            f"inherited vs fine-tuned test accuracy over the front: Kendall tau {correlation[0]:.2f}, "
            f"Spearman rho {correlation[1]:.2f} (n={len(front)})"
        )
    for line in summary_lines(front):
        report("  " + line)
    exported = sum((run_dir / final.onnx).is_file() for final in contents.finals.values())
    report(
        f"wrote {run_dir}/{', '.join(written)}" + (f"; onnx/ holds {exported} networks" if exported else "")
    )
    return front


def _baseline_front(run_dir: Path) -> list[CandidateResult] | None:
    """The static baseline's returned networks (final figures), None for a run without a baseline."""
    path = run_dir / BASELINE_FOLDER / STORE_NAME
    if not path.is_file():
        return None
    with RunStore(path, create=False) as store:
        return [final.result for final in store.finals().values()]


def _candidate_rows(
    items: list[tuple[str, CandidateResult]], finals: dict[str, CandidateResult], constraints: Constraints
) -> list[dict]:
    rows = []
    for k, r in items:
        shown = finals.get(k, r)  # a returned network: its figures after the final fine-tuning
        violations = constraint_values(shown, constraints)
        rows.append(
            {
                **result_row(shown, r if k in finals else None),
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
    with RunStore.of_run(run_dir) as store:
        finals = {key: final.result for key, final in store.finals().items()}
        return pd.DataFrame(_candidate_rows(store.items(), finals, store.search_settings().constraints))


def surrogate_rows(rounds: list[IterationReport]) -> list[dict]:
    """Predictor quality per surrogate round: chosen kind, its cross-validated and out-of-sample Kendall tau."""
    rows = []
    for r in rounds:
        for target, kind in r.chosen.items():
            rows.append(
                {
                    "round": r.iteration,
                    "archive_size": r.archive_size,
                    "target": target,
                    "predictor": kind,
                    "cv_kendall_tau": r.all_cv_tau[target][kind],
                    "new_points_kendall_tau": r.new_tau[target],
                    **{f"cv_tau_{k}": v for k, v in r.all_cv_tau[target].items()},
                }
            )
    return rows


def write_comparison(
    run_dir: Path,
    store: RunStore,
    accelerators: tuple[str, ...],
    cache_path: Path | None,
    report: Reporter = print,
) -> Path:
    """Every returned network costed on each of `accelerators` too (its own ONNX file, the run's ZigZag options
    and cost model, its test exit fractions): `compare.csv`, one row per network, accelerator and exit,
    with columns that mean the same on every accelerator (`cost.roles`) and the chip area."""
    from codesign.cost.report import cost_onnx
    from codesign.cost.report_text import comparison_table

    contents = store.contents()
    config = contents.config
    frames = []
    for record in contents.finals.values():
        result = record.result
        reports = [
            cost_onnx(
                run_dir / record.onnx,
                name,
                options=config.cost if config else None,
                settings=config.cost_model if config else None,
                exit_fractions=result.test.fractions if result.test is not None else None,
                residency_fractions=result.val.fractions,
                cache_path=cache_path,
            )
            for name in accelerators
        ]
        frame = comparison_table(reports)
        frame.insert(0, "network", result.spec.key())  # as pareto.csv and the ONNX file name it
        frame.insert(1, "accuracy", result.test.accuracy if result.test is not None else float("nan"))
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    path = run_dir / "compare.csv"
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))
    report(
        f"wrote {path}: the {len(contents.finals)} returned networks on {', '.join(accelerators)} "
        "(same exit fractions; energy by memory role and chip area comparable across accelerators)"
    )
    return path


def write_comparison_page(run_dirs: list[Path], out: Path, cache_path: Path | None = None) -> Path:
    """One page comparing runs (say, one workload on two accelerators): every run's candidates on one front,
    in one sortable table with a run column, with each run's early-exit-vs-static verdicts."""
    from codesign.runs.html_report import compare_data, render

    parts = []
    for run_dir in run_dirs:
        with RunStore.of_run(run_dir) as store:
            contents = store.contents()
            cache = cache_path or (Path(store.cost_cache()) if store.cost_cache() else None)
        results = [r for _, r in contents.items]
        objectives, constraints = contents.settings.objectives, contents.settings.constraints
        volumes = (
            hypervolume_by_generation_keys(
                [k for k, _ in contents.items], results, contents.generations, objectives, constraints
            )
            if contents.generations
            else []
        )
        parts.append((run_dir, contents, _baseline_front(run_dir), volumes, cache))
    data = compare_data(parts)
    atomic_write_text(out, render(data))
    return out
