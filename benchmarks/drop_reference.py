"""What should the accuracy drop of threshold tuning be measured against? The same candidates, two rules.

Threshold tuning lets a candidate give up `max_accuracy_drop` of validation accuracy for energy. Measured
against the final exit ("final"), a weak inherited final exit lets the first exit take every input at no
loss, and backbones that share that exit become one point of the front. Measured against the best the
network's own exits reach ("best"), they stay apart. This script re-tunes every early-exit candidate a run
evaluated under both rules (same weights, same costs, same drop and confidence as the run), then, per rule:

* how many candidates send (almost) every validation input out at their first exit, and how many distinct
  (validation accuracy, energy) points the candidates make;
* the front chosen on validation, measured on test: its test hypervolume (accuracy x energy, both rules
  against one reference point) and, at the most accurate static counterpart's test accuracy and 0.5 and 1
  point below it, the cheapest network reaching it;
* per network, the best energy ratio to its own static counterpart within 0.5 point of its test accuracy.

    .venv/bin/python benchmarks/drop_reference.py runs/fm-base
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from codesign.cost.cache import default_cache_path
from codesign.cost.exits import expected_cost
from codesign.evaluation.result import CandidateResult
from codesign.exits import DROP_REFERENCES
from codesign.runs.setup import open_run_evaluator
from codesign.runs.store import RunStore
from codesign.thresholds import tune_thresholds


@dataclass(frozen=True)
class Tuned:
    first_exit_share: float  # validation inputs leaving at the first active exit
    val_accuracy: float
    val_energy_pj: float
    test_accuracy: float
    test_energy_pj: float
    static_test_accuracy: float
    static_energy_pj: float


def front(points: list[tuple[float, float, int]]) -> list[int]:
    """Indices of the non-dominated (accuracy up, energy down) points."""
    chosen, best_energy = [], float("inf")
    for _accuracy, energy, index in sorted(points, key=lambda p: (-p[0], p[1])):
        if energy < best_energy:
            chosen.append(index)
            best_energy = energy
    return chosen


def hypervolume(points: list[tuple[float, float]], floor: float, ceiling: float) -> float:
    """Area dominated by (accuracy up, energy down) points above accuracy `floor`, below energy `ceiling`."""
    area, best_accuracy = 0.0, floor
    for accuracy, energy in sorted(points, key=lambda p: p[1]):
        if energy < ceiling and accuracy > best_accuracy:
            area += (accuracy - best_accuracy) * (ceiling - energy)
            best_accuracy = accuracy
    return area


def retune(run: Path, data_dir: Path | None) -> dict[str, list[Tuned]]:
    with RunStore.of_run(run) as store:
        results = [r for _, r in store.items() if r.num_exits > 1]
    _, evaluator = open_run_evaluator(run, default_cache_path(), data_dir)
    settings = evaluator.settings
    if settings.threshold_tuning is None:
        raise SystemExit(f"{run}: its thresholds are searched, not tuned: nothing to compare")
    tuned: dict[str, list[Tuned]] = {rule: [] for rule in DROP_REFERENCES}
    start = time.perf_counter()
    for done, result in enumerate(results, 1):
        spec = result.spec
        val, test = evaluator.trained(spec).val, evaluator.test_exits(spec)
        for rule in DROP_REFERENCES:
            tuned[rule].append(_tuned(result, val, test, settings, rule))
        if done % 10 == 0 or done == len(results):
            print(
                f"  {done}/{len(results)} candidates re-tuned ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    return tuned


def _tuned(result: CandidateResult, val, test, settings, rule: str) -> Tuned:  # noqa: ANN001
    spec = result.spec
    positions = spec.active_exit_stages
    drop = spec.accuracy_drop if spec.accuracy_drop is not None else settings.threshold_tuning
    energies = [e.energy_pj for e in result.exits]
    thresholds, val_stats = tune_thresholds(
        val, positions, spec.policy, energies, drop, confidence=settings.tuning_confidence, reference=rule
    )
    test_stats = test.simulate(positions, thresholds, spec.policy)
    return Tuned(
        first_exit_share=val_stats.fractions[0],
        val_accuracy=val_stats.accuracy,
        val_energy_pj=expected_cost(list(result.exits), val_stats.fractions).energy_pj,
        test_accuracy=test_stats.accuracy,
        test_energy_pj=expected_cost(list(result.exits), test_stats.fractions).energy_pj,
        static_test_accuracy=float(test.correct[positions[-1]].mean()),
        static_energy_pj=result.static.energy_pj,
    )


def report(tuned: dict[str, list[Tuned]]) -> None:
    every = [t for rows in tuned.values() for t in rows]
    floor = min(t.test_accuracy for t in every) - 1e-3
    ceiling = max(t.test_energy_pj for t in every) * 1.01
    static_best = max(t.static_test_accuracy for t in every)
    print(
        f"\n{len(next(iter(tuned.values())))} early-exit candidates; levels from the most accurate static "
        f"counterpart on test: {100 * static_best:.2f}%"
    )
    header = (
        f"{'rule':>6} {'>=99% at 1st exit':>17} {'distinct val points':>19} {'val front':>9} "
        f"{'test HV':>9} {'best':>8} {'-0.5 pt':>8} {'-1 pt':>8} {'own static, within 0.5 pt':>26}"
    )
    print(header)
    for rule, rows in tuned.items():
        degenerate = sum(t.first_exit_share >= 0.99 for t in rows)
        distinct = len({(round(t.val_accuracy, 6), round(t.val_energy_pj, 1)) for t in rows})
        chosen = [rows[i] for i in front([(t.val_accuracy, t.val_energy_pj, i) for i, t in enumerate(rows)])]
        volume = hypervolume([(t.test_accuracy, t.test_energy_pj) for t in chosen], floor, ceiling)
        levels = []
        for below in (0.0, 0.005, 0.01):
            reach = [t.test_energy_pj for t in chosen if t.test_accuracy >= static_best - below - 1e-12]
            levels.append(f"{min(reach) / 1e3:8.1f}" if reach else f"{'-':>8}")
        own = [
            t.test_energy_pj / t.static_energy_pj
            for t in rows
            if t.test_accuracy >= t.static_test_accuracy - 0.005 - 1e-12
        ]
        own_text = f"{min(own):.2f}x (median {np.median(own):.2f}, {len(own)} nets)" if own else "-"
        print(
            f"{rule:>6} {degenerate:>17} {distinct:>19} {len(chosen):>9} {volume:>9.4g} "
            f"{' '.join(levels)} {own_text:>26}"
        )
    print(
        "levels: expected energy per inference [nJ] on test of the cheapest validation-front network reaching it"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="an explore run folder whose thresholds were tuned")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    report(retune(args.run, args.data_dir))
    print(f"\nwall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
