"""Search-engine benchmark (issue 5), two parts:

A. Overhead per generation of the search machinery alone (NSGA-II, decoding, run-store reads and
   writes, Pareto bookkeeping) at population 100. Training and costing are excluded by design: the
   objective values here are a fixed deterministic function of the spec, so only the machinery is timed.

B. On a digits space small enough to enumerate completely with real evaluations (trained networks,
   cached logits, ZigZag costs), the true Pareto front's hypervolume against what NSGA-II reaches with
   at most 20% of the evaluations (several seeds).

    .venv/bin/python benchmarks/bench_search.py
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from codesign.config.workload import parse_workload
from codesign.cost.records import ExitCost, ExpectedCost
from codesign.evaluation.result import CandidateResult
from codesign.exits import ExitStats
from codesign.runs.store import RunStore
from codesign.search.objectives import hypervolume, normalised_objectives, pareto_front
from codesign.search.run import run_search
from codesign.search.settings import SearchSettings


def synthetic_result(spec) -> CandidateResult:
    """Deterministic stand-in metrics (A only): the search machinery is what is timed, not these values."""
    macs = sum(s.depth * s.width * s.width for s in spec.stages)
    share = sum(spec.exits) / (len(spec.exits) + 1)
    accuracy = 1.0 - 1.0 / (1.0 + macs / 5000.0) - 0.02 * share * (1 - np.mean(spec.thresholds))
    stats = ExitStats(
        float(accuracy), tuple([1.0 / len(spec.active_exit_stages)] * len(spec.active_exit_stages)), ()
    )
    exits = tuple(ExitCost(i, float(macs * (i + 1)), float(macs), macs) for i in spec.active_exit_stages)
    expected = ExpectedCost(float(macs * (1 - 0.5 * share)), float(macs), float(macs), float(macs))
    return CandidateResult(spec, stats, None, exits, expected, None, exits[-1], float(accuracy), None)


def part_a(population: int = 100, generations: int = 10) -> None:
    workload = parse_workload(
        {
            "space": {
                "stages": [
                    {
                        "block": ["conv", "mbconv", "basic"],
                        "depth": [1, 2, 3],
                        "width": [8, 16, 24, 32],
                        "kernel": [3, 5],
                        "expansion": [2, 3, 4],
                        "weight_bits": [2, 4, 8],
                        "act_bits": [4, 8],
                        "stride": 1,
                    },
                ]
                * 4,
                "exit_branches": {"convs": [0, 1, 2], "channels": [8, 16, 32], "pool": [1, 2]},
                "policies": ["score_margin", "max_prob", "entropy"],
            },
            "search": {
                "population": population,
                "generations": generations,
                "objectives": ["accuracy", "energy", "latency"],
            },
        },
        "bench",
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "run.db")
        seen: list[CandidateResult] = []
        in_evaluation = [0.0]
        marks: list[float] = []

        def evaluate_batch(specs):
            marks.append(time.perf_counter())
            results = []
            for spec in specs:
                key = spec.key()
                stored = store.get(key)
                if stored is None:
                    start = time.perf_counter()
                    stored = synthetic_result(spec)
                    in_evaluation[0] += time.perf_counter() - start
                    store.put(stored, key=key)
                results.append(stored)
            seen.extend(results)
            pareto_front(seen, workload.search.objectives)
            return results

        start = time.perf_counter()
        run_search(workload.space, workload.search, evaluate_batch)
        total = time.perf_counter() - start
        store.close()
    per_generation = (total - in_evaluation[0]) / generations
    gaps = np.diff(marks)
    print(
        f"A. search overhead, population {population}, {generations} generations, space of {workload.space.size():.3g} specs:"
    )
    print(
        f"   {per_generation * 1e3:.0f} ms per generation (NSGA-II + decoding + SQLite store + Pareto bookkeeping; "
        f"stand-in metric computation excluded: {in_evaluation[0] * 1e3:.0f} ms total); "
        f"median gap between generations {np.median(gaps) * 1e3:.0f} ms; target < 1000 ms"
    )


class BudgetReached(Exception):
    pass


def budgeted_search(
    space, settings, everything: dict[str, CandidateResult], budget: int, on_round=None
) -> list[str]:
    """Run the search on pre-evaluated results until `budget` distinct networks have been asked for;
    returns their keys in the order they were first asked for (one real evaluation each)."""
    used: dict[str, None] = {}

    def evaluate_batch(specs):
        out = []
        for spec in specs:
            key = spec.key()
            if key not in used and len(used) >= budget:
                raise BudgetReached
            used[key] = None
            out.append(everything[key])
        return out

    with contextlib.suppress(BudgetReached):
        run_search(space, settings, evaluate_batch, on_round)
    return list(used)


def evaluations_to_reach(order: list[str], F: np.ndarray, index: dict[str, int], level: float) -> int | None:
    """Real evaluations after which the hypervolume of everything evaluated first reaches `level`."""
    for count in range(1, len(order) + 1):
        if hypervolume(F[[index[k] for k in order[:count]]]) >= level:
            return count
    return None


def part_b(seeds: tuple[int, ...] = tuple(range(10)), budget_share: float = 0.2) -> None:
    from codesign.cost.cache import LayerCostCache
    from codesign.cost.engine import CostEngine
    from codesign.cost.settings import CostOptions
    from codesign.data.registry import load_dataset
    from codesign.evaluation.evaluator import EvaluationSettings, Evaluator
    from codesign.hardware.target import load_hardware
    from codesign.network.settings import TrainingConfig
    from codesign.search.settings import SurrogateSettings

    torch.set_num_threads(1)
    workload = parse_workload(
        {
            "space": {
                "stages": [
                    {"depth": 1, "width": [8, 16], "stride": 1, "weight_bits": 8},
                    {"depth": 1, "width": 16, "stride": 2, "weight_bits": [4, 8]},
                    {"depth": 1, "width": 32, "stride": 2, "weight_bits": 8},
                ],
                "thresholds": [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9],
                "policies": ["score_margin", "max_prob"],
            },
            "search": {"objectives": ["accuracy", "energy"]},
        },
        "bench",
    )
    space = replace(workload.space, num_classes=10, in_channels=1, resolution=8)
    dataset = load_dataset("digits")
    with tempfile.TemporaryDirectory() as tmp:
        engine = CostEngine(
            load_hardware("edge_tpu_like"), CostOptions(lpf_limit=3), LayerCostCache(Path(tmp) / "c.sqlite")
        )
        evaluator = Evaluator(dataset, engine, EvaluationSettings(training=TrainingConfig(epochs=8)))
        everything: dict[str, CandidateResult] = {}
        start = time.perf_counter()
        for indices in space.all_indices():
            spec = space.decode(indices)
            if spec.key() not in everything:
                everything[spec.key()] = evaluator.evaluate(spec)
        enumerate_s = time.perf_counter() - start
    results = list(everything.values())
    objectives = ("accuracy", "energy")
    F = normalised_objectives(results, objectives)
    index = {k: i for i, k in enumerate(everything)}
    true_hv = hypervolume(F)
    budget = int(budget_share * len(results))
    print(
        f"B. enumerable space: {space.size()} gene vectors, {len(results)} distinct networks, all evaluated for real "
        f"in {enumerate_s:.0f} s; true front: {len(pareto_front(results, objectives))} networks, hypervolume {true_hv:.4f}"
    )
    population = max(4, budget // 5)
    plain = SearchSettings(population=population, generations=50, seed=0, objectives=objectives)
    assisted = replace(
        plain, surrogate=SurrogateSettings(initial=population, per_iteration=population // 2, iterations=50)
    )
    ratios: dict[str, list[float]] = {"NSGA-II": [], "NSGA-II + surrogates": []}
    needed: dict[str, dict[float, list[int | None]]] = {name: {0.98: [], 0.99: []} for name in ratios}
    seconds: dict[str, float] = dict.fromkeys(ratios, 0.0)
    for seed in seeds:
        line = []
        for name, settings in (("NSGA-II", plain), ("NSGA-II + surrogates", assisted)):
            start = time.perf_counter()
            rounds: list = []
            order = budgeted_search(space, replace(settings, seed=seed), everything, budget, rounds.append)
            if seed == seeds[0] and rounds:
                print(
                    f"   predictor quality per round (seed {seed}; 'new': Kendall tau on the round's real evaluations):"
                )
                for report in rounds:
                    print("     " + report.line())
            seconds[name] += time.perf_counter() - start
            ratio = hypervolume(F[[index[k] for k in order]]) / true_hv
            ratios[name].append(ratio)
            for level in needed[name]:
                needed[name][level].append(evaluations_to_reach(order, F, index, level * true_hv))
            line.append(
                f"{name} {100 * ratio:.1f}% (98% after {needed[name][0.98][-1]}, 99% after {needed[name][0.99][-1]})"
            )
        print(f"   seed {seed}: " + " | ".join(line))
    for name in ratios:
        reach = {
            level: [n if n is not None else budget + 1 for n in counts]
            for level, counts in needed[name].items()
        }
        misses = {level: sum(n is None for n in counts) for level, counts in needed[name].items()}
        print(
            f"   {name}: with {budget} evaluations ({100 * budget / len(results):.0f}%) mean {100 * statistics.mean(ratios[name]):.1f}%, "
            f"worst {100 * min(ratios[name]):.1f}% of the true hypervolume (target >= 98%); real evaluations to reach "
            f"98%: median {statistics.median(reach[0.98]):.0f} (missed {misses[0.98]}/{len(seeds)}), 99%: median "
            f"{statistics.median(reach[0.99]):.0f} (missed {misses[0.99]}/{len(seeds)}); search time "
            f"{seconds[name] / len(seeds):.1f} s per run (evaluations are cached here)"
        )


if __name__ == "__main__":
    part_a()
    part_b()
