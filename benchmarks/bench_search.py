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

from codesign.evaluator import CandidateResult
from codesign.exit_costs import ExitCost, ExpectedCost
from codesign.exits import ExitStats
from codesign.search import hypervolume, normalised_objectives, pareto_front, run_nsga2
from codesign.store import RunStore
from codesign.workload import SearchSettings, parse_workload


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
        run_nsga2(workload.space, workload.search, evaluate_batch)
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


def budgeted_search(space, settings, everything: dict[str, CandidateResult], budget: int) -> set[str]:
    """Run NSGA-II on pre-evaluated results until `budget` distinct networks have been asked for."""
    used: set[str] = set()

    def evaluate_batch(specs):
        out = []
        for spec in specs:
            key = spec.key()
            if key not in used and len(used) >= budget:
                raise BudgetReached
            used.add(key)
            out.append(everything[key])
        return out

    with contextlib.suppress(BudgetReached):
        run_nsga2(space, settings, evaluate_batch)
    return used


def part_b(seeds: tuple[int, ...] = (0, 1, 2, 3, 4), budget_share: float = 0.2) -> None:
    from codesign.cost_cache import LayerCostCache
    from codesign.cost_engine import CostEngine
    from codesign.data import load_dataset
    from codesign.evaluator import Evaluator
    from codesign.hardware import load_hardware
    from codesign.training import TrainingConfig
    from codesign.zigzag_runner import CostOptions

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
        evaluator = Evaluator(dataset, TrainingConfig(epochs=8), engine)
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
        scale = {k: i for i, k in enumerate(everything)}
        true_hv = hypervolume(F)
        budget = int(budget_share * len(results))
        print(
            f"B. enumerable space: {space.size()} gene vectors, {len(results)} distinct networks, all evaluated for real "
            f"in {enumerate_s:.0f} s; true front: {len(pareto_front(results, objectives))} networks, hypervolume {true_hv:.4f}"
        )
        ratios = []
        for seed in seeds:
            population = max(4, budget // 5)
            settings = SearchSettings(population=population, generations=50, seed=seed, objectives=objectives)
            used = budgeted_search(space, settings, everything, budget)
            found = hypervolume(F[[scale[k] for k in used]])
            ratios.append(found / true_hv)
            print(
                f"   seed {seed}: {len(used)} evaluations ({100 * len(used) / len(results):.0f}%), "
                f"hypervolume {found:.4f} = {100 * found / true_hv:.1f}% of the true front's"
            )
        print(
            f"   mean {100 * statistics.mean(ratios):.1f}%, worst {100 * min(ratios):.1f}% (target >= 98% with <= 20%)"
        )


if __name__ == "__main__":
    part_a()
    part_b()
