"""The co-design search as a pymoo problem: integer genes -> CandidateSpec -> objectives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from pymoo.core.problem import Problem
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from codesign.config.workload import Constraints, SearchSettings, SearchSpace
from codesign.evaluation.evaluator import CandidateResult
from codesign.spec import CandidateSpec

EvaluateBatchFn = Callable[[list[CandidateSpec]], list[CandidateResult]]


OBJECTIVE_UNITS = {
    "accuracy": "1 - validation accuracy",
    "energy": "expected energy per inference [pJ]",
    "latency": "expected latency per inference [s]",
    "edp": "expected energy x expected latency [J*s]",
    "worst_latency": "worst-case latency over the exits taken [s]",
    "size": "weights at their bit widths [bytes]",
}


def objective_values(result: CandidateResult, objectives: tuple[str, ...]) -> list[float]:
    """Objectives to minimise, from validation figures (the test split is never searched on).

    Latencies are in seconds so that candidates at different clock frequencies compare fairly.
    """
    expected = result.expected_val
    values = {
        "accuracy": 1.0 - result.val.accuracy,
        "energy": expected.energy_pj,
        "latency": result.seconds(expected.latency_cycles),
        "edp": result.edp(expected),
        "worst_latency": result.seconds(expected.worst_latency_cycles),
        "size": result.weight_bytes,
    }
    return [values[name] for name in objectives]


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
        "weights_on_chip": lambda: (  # unknown capacity (results stored by an older version): not held against it
            0.0
            if not result.weight_capacity_bytes
            else result.weight_bytes / result.weight_capacity_bytes - 1.0
        ),
    }
    return [values[name]() for name in constraints.active]


def feasible(result: CandidateResult, constraints: Constraints) -> bool:
    return all(v <= 0 for v in constraint_values(result, constraints))


class CodesignProblem(Problem):
    """Decision variables are the indices of the space's genes that have more than one choice."""

    def __init__(
        self,
        space: SearchSpace,
        evaluate_batch: EvaluateBatchFn,
        objectives: tuple[str, ...],
        constraints: Constraints | None = None,
    ):
        self.space = space
        self.evaluate_batch = evaluate_batch
        self.objectives = objectives
        self.constraints = constraints or Constraints()
        genes = space.genes
        self.free = [i for i, g in enumerate(genes) if len(g.choices) > 1]
        self.num_genes = len(genes)
        upper = np.array([len(genes[i].choices) - 1 for i in self.free])
        super().__init__(
            n_var=len(self.free),
            n_obj=len(objectives),
            n_ieq_constr=len(self.constraints.active),
            xl=np.zeros(len(self.free)),
            xu=upper,
            vtype=int,
        )

    def decode(self, x: np.ndarray) -> CandidateSpec:
        indices = [0] * self.num_genes
        for position, gene_index in enumerate(self.free):
            indices[gene_index] = int(round(float(x[position])))
        return self.space.decode(indices)

    def _evaluate(self, X: np.ndarray, out: dict, *args: object, **kwargs: object) -> None:
        results = self.evaluate_batch([self.decode(x) for x in X])
        out["F"] = np.array([objective_values(r, self.objectives) for r in results])
        if self.n_ieq_constr:
            out["G"] = np.array([constraint_values(r, self.constraints) for r in results])


def run_search(
    space: SearchSpace,
    settings: SearchSettings,
    evaluate_batch: EvaluateBatchFn,
    on_surrogate_round: Callable[[Any], None] | None = None,
) -> None:
    """The workload's search: surrogate-assisted if `settings.surrogate` (`on_surrogate_round` receives each
    round's predictor report), else its pymoo algorithm on real evaluations. Results arrive through
    `evaluate_batch`, which stores them; nothing is returned."""
    if settings.surrogate is not None:
        from codesign.search.surrogate_search import run_surrogate_search

        run_surrogate_search(space, settings, evaluate_batch, on_surrogate_round)
    else:
        run_algorithm(space, settings, evaluate_batch)


def run_algorithm(space: SearchSpace, settings: SearchSettings, evaluate_batch: EvaluateBatchFn) -> None:
    """`settings.algorithm` (NSGA-II by default) for `settings.generations` generations, every candidate real."""
    from pymoo.optimize import minimize

    from codesign.search.algorithms import make_algorithm

    problem = CodesignProblem(space, evaluate_batch, settings.objectives, settings.constraints)
    algorithm = make_algorithm(
        settings.algorithm, settings.population, len(settings.objectives), settings.seed
    )
    minimize(problem, algorithm, ("n_gen", settings.generations), seed=settings.seed, verbose=False)


def pareto_front(
    results: list[CandidateResult], objectives: tuple[str, ...], constraints: Constraints | None = None
) -> list[CandidateResult]:
    """Non-dominated candidates among the evaluated ones that meet the constraints (validation objectives),
    ordered by expected energy."""
    if constraints is not None and constraints.active:
        results = [r for r in results if feasible(r, constraints)]
    if not results:
        return []
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
