"""Objectives and constraints of the search, from a candidate's validation figures.

`OBJECTIVES` is the registry of objectives (`search.objectives` in a workload): name -> `Objective`, the
value to minimise and its unit. Latencies are in seconds so that candidates at different clock
frequencies compare fairly. The test split is never searched on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from codesign.evaluation.result import CandidateResult
from codesign.registry import Registry
from codesign.search.settings import Constraints


@dataclass(frozen=True)
class Objective:
    """One quantity to minimise: `value(result)` on validation figures, in `unit`."""

    unit: str
    value: Callable[[CandidateResult], float]


OBJECTIVES: Registry[Objective] = Registry(
    "objective",
    {
        "accuracy": Objective("1 - validation accuracy", lambda r: 1.0 - r.val.accuracy),
        "energy": Objective("expected energy per inference [pJ]", lambda r: r.expected_val.energy_pj),
        "latency": Objective(
            "expected latency per inference [s]", lambda r: r.seconds(r.expected_val.latency_cycles)
        ),
        "edp": Objective("expected energy x expected latency [J*s]", lambda r: r.edp(r.expected_val)),
        "worst_latency": Objective(
            "worst-case latency over the exits taken [s]",
            lambda r: r.seconds(r.expected_val.worst_latency_cycles),
        ),
        "size": Objective("weights at their bit widths [bytes]", lambda r: r.weight_bytes),
        "macs": Objective(
            "expected multiply-accumulates per inference (the cost model of EDANAS, NACHOS, AEBNAS)",
            lambda r: float(r.expected_val.macs),
        ),
        "area": Objective(
            "chip area of the accelerator variant, from its file's area fields [file unit, mm^2 by convention]",
            lambda r: r.chip_area if r.chip_area is not None else float("nan"),
        ),
        "exit_overhead": Objective(
            "expected energy in exit heads the input went past [pJ]",
            lambda r: r.expected_val.exit_overhead_pj,
        ),
    },
)


def objective_values(result: CandidateResult, objectives: tuple[str, ...]) -> list[float]:
    """The objectives' values to minimise, from validation figures."""
    return [OBJECTIVES[name].value(result) for name in objectives]


def constraint_values(result: CandidateResult, constraints: Constraints) -> list[float]:
    """One value per active constraint, <= 0 when met (pymoo's convention), relative to its limit (0.1: 10% over),
    so that violations in different units weigh alike when pymoo sums them."""
    expected = result.expected_val
    values = {
        "min_accuracy": lambda: (constraints.min_accuracy - result.val.accuracy) / constraints.min_accuracy,
        "max_latency_ms": lambda: (
            1e3 * result.seconds(expected.worst_latency_cycles) / constraints.max_latency_ms - 1.0
        ),
        "max_energy_uj": lambda: expected.energy_pj * 1e-6 / constraints.max_energy_uj - 1.0,
        "max_exit_overhead_uj": lambda: (
            expected.exit_overhead_pj * 1e-6 / constraints.max_exit_overhead_uj - 1.0
        ),
        "max_area": lambda: (
            (result.chip_area / constraints.max_area - 1.0) if result.chip_area is not None else float("nan")
        ),
        "weights_on_chip": lambda: (  # unknown capacity (results stored by an older version): not held against it
            0.0
            if not result.weight_capacity_bytes
            else result.weight_bytes / result.weight_capacity_bytes - 1.0
        ),
    }
    return [values[name]() for name in constraints.active]


def feasible(result: CandidateResult, constraints: Constraints) -> bool:
    return all(v <= 0 for v in constraint_values(result, constraints))


def pareto_front(
    results: list[CandidateResult], objectives: tuple[str, ...], constraints: Constraints | None = None
) -> list[CandidateResult]:
    """Non-dominated candidates among the evaluated ones that meet the constraints (validation objectives),
    ordered by expected energy."""
    if constraints is not None and constraints.active:
        results = [r for r in results if feasible(r, constraints)]
    if not results:
        return []
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    F = np.array([objective_values(r, objectives) for r in results])
    front = NonDominatedSorting().do(F, only_non_dominated_front=True)
    chosen = [results[i] for i in front]
    return sorted(chosen, key=lambda r: (r.expected_val.energy_pj, -r.val.accuracy))


def normalised_objectives(results: list[CandidateResult], objectives: tuple[str, ...]) -> np.ndarray:
    """Objectives scaled to [0, 1] by the largest value seen (accuracy error is already a fraction)."""
    F = np.array([objective_values(r, objectives) for r in results], dtype=float)
    for column, name in enumerate(objectives):
        if name != "accuracy":
            F[:, column] = F[:, column] / max(F[:, column].max(), 1e-30)
    return F


def hypervolume(F: np.ndarray, reference: float = 1.1) -> float:
    """Hypervolume of the non-dominated points of F (normalised, minimised) against (reference, ...)."""
    from pymoo.indicators.hv import HV

    if len(F) == 0:
        return 0.0
    return float(HV(ref_point=np.full(F.shape[1], reference))(F))


def hypervolume_by_generation_keys(
    keys: list[str],
    results: list[CandidateResult],
    generations: list[list[str]],
    objectives: tuple[str, ...],
    constraints: Constraints | None = None,
) -> list[float]:
    """Hypervolume of everything evaluated (and feasible) up to each generation, same normalisation throughout.

    `keys[i]` is the key under which `results[i]` was stored; `generations` lists those keys per generation."""
    F = normalised_objectives(results, objectives)
    index = {k: i for i, k in enumerate(keys) if constraints is None or feasible(results[i], constraints)}
    seen: set[int] = set()
    values = []
    for members in generations:
        seen |= {index[k] for k in members if k in index}
        values.append(hypervolume(F[sorted(seen)]))
    return values
