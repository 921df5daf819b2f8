"""Surrogate-assisted search: an archive of real evaluations, predictors fitted to it, the workload's pymoo
algorithm run on the predictions, and the most promising unseen candidates evaluated for real each round.

Deterministic for a given seed and archive, so a resumed run (whose evaluations come back from the run
store) retraces the same rounds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pymoo.core.problem import Problem
from pymoo.optimize import minimize
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from codesign.search.algorithms import make_algorithm
from codesign.search.objectives import constraint_values, objective_values
from codesign.search.problem import CodesignProblem, EvaluateBatchFn
from codesign.search.settings import SearchSettings, SurrogateSettings
from codesign.search.surrogate import ObjectivePredictors, rank_agreement
from codesign.space import SearchSpace
from codesign.spec import CandidateSpec

INNER_POPULATION = 100
INNER_GENERATIONS = 60


@dataclass(frozen=True)
class IterationReport:
    """Predictor quality in one round: the kind chosen per target, its cross-validated Kendall tau on the
    archive, and the Kendall tau of its predictions on the candidates then evaluated for real."""

    iteration: int
    archive_size: int
    evaluated: int
    chosen: dict[str, str]
    new_tau: dict[str, float | None]
    all_cv_tau: dict[str, dict[str, float]]

    @property
    def cv_tau(self) -> dict[str, float]:
        """Cross-validated tau of the predictor chosen for each target."""
        return {t: self.all_cv_tau[t][kind] for t, kind in self.chosen.items()}

    def line(self) -> str:
        parts = [
            f"{t}: {self.chosen[t]} tau {self.all_cv_tau[t][self.chosen[t]]:.2f}"
            + (f" (new {self.new_tau[t]:.2f})" if self.new_tau[t] is not None else "")
            for t in self.chosen
        ]
        return f"surrogate round {self.iteration}: archive {self.archive_size} | " + ", ".join(parts)


class _PredictedProblem(Problem):
    def __init__(self, real: CodesignProblem, predictors: ObjectivePredictors, n_obj: int, scale: np.ndarray):
        super().__init__(
            n_var=real.n_var, n_obj=n_obj, n_ieq_constr=real.n_ieq_constr, xl=real.xl, xu=real.xu, vtype=int
        )
        self.predictors, self.scale = predictors, scale

    def _evaluate(self, X: np.ndarray, out: dict, *args: object, **kwargs: object) -> None:
        predicted = self.predictors.predict(np.round(X) / self.scale)
        out["F"] = predicted[:, : self.n_obj]
        if self.n_ieq_constr:
            out["G"] = predicted[:, self.n_obj :]


def _targets(values: list[float], objectives: tuple[str, ...]) -> list[float]:
    """Costs span orders of magnitude: predict their logarithm (same ranking, smoother to fit)."""
    return [
        v if name == "accuracy" else float(np.log10(max(v, 1e-30)))
        for v, name in zip(values, objectives, strict=True)
    ]


def run_surrogate_search(
    space: SearchSpace,
    settings: SearchSettings,
    evaluate_batch: EvaluateBatchFn,
    on_iteration: Callable[[IterationReport], None] | None = None,
    seeds: Sequence[CandidateSpec] = (),
) -> list[IterationReport]:
    """`settings.surrogate` rounds (the default surrogate settings if the workload gave none); the initial
    evaluations start with `seeds` (static networks, see `CodesignProblem.seed_rows`) and their early-exit
    twins (`operators.exit_twins`)."""
    surrogate = settings.surrogate or SurrogateSettings()
    objectives, constraints = settings.objectives, settings.constraints
    problem = CodesignProblem(space, evaluate_batch, objectives, constraints)
    scale = np.maximum(problem.xu, 1).astype(float)
    rng = np.random.default_rng(settings.seed)
    targets = (*objectives, *constraints.active)
    genes: list[np.ndarray] = []
    values: list[list[float]] = []
    seen: set[str] = set()

    def evaluate(X: np.ndarray) -> np.ndarray:
        results = evaluate_batch([problem.decode(x) for x in X])
        rows = [
            _targets(objective_values(r, objectives), objectives) + constraint_values(r, constraints)
            for r in results
        ]
        genes.extend(X)
        values.extend(rows)
        return np.array(rows)

    def unseen(X: np.ndarray, limit: int) -> list[np.ndarray]:
        chosen = []
        for x in X:
            key = problem.decode(x).key()
            if key not in seen:
                seen.add(key)
                chosen.append(x)
                if len(chosen) == limit:
                    break
        return chosen

    def random_unseen(count: int) -> list[np.ndarray]:
        draws = rng.integers(0, problem.xu.astype(int) + 1, size=(50 * count, problem.n_var))
        return unseen(draws, count)

    seed_rows = problem.seed_rows(seeds)
    twins = problem.exit_twins(seed_rows, rng)
    first = unseen(np.vstack([seed_rows, twins]) if len(twins) else seed_rows, surrogate.initial)
    evaluate(np.array(first + random_unseen(surrogate.initial - len(first))))
    reports: list[IterationReport] = []
    for iteration in range(1, surrogate.iterations + 1):
        X = np.array(genes, dtype=float) / scale
        Y = np.array(values)
        predictors = ObjectivePredictors(targets, surrogate.predictors, seed=settings.seed).fit(X, Y)
        inner = _PredictedProblem(problem, predictors, len(objectives), scale)
        algorithm = make_algorithm(
            settings.algorithm, INNER_POPULATION, len(objectives), settings.seed + iteration
        )
        found = minimize(inner, algorithm, ("n_gen", INNER_GENERATIONS), seed=settings.seed + iteration)
        cost_column = next(i for i, name in enumerate(objectives) if name != "accuracy")
        batch = unseen(_most_promising(found.pop, cost_column), surrogate.per_iteration)
        batch += random_unseen(surrogate.per_iteration - len(batch))  # the predictions ran dry: explore
        if not batch:
            break  # the whole space has been evaluated
        batch_X = np.array(batch)
        predicted = predictors.predict(batch_X / scale)
        actual = evaluate(batch_X)
        report = IterationReport(
            iteration=iteration,
            archive_size=len(genes) - len(batch),
            evaluated=len(batch),
            chosen={s.target: s.kind for s in predictors.selections},
            new_tau={
                t: (rank_agreement(predicted[:, c], actual[:, c]) if len(batch) >= 3 else None)
                for c, t in enumerate(targets)
            },
            all_cv_tau={s.target: dict(s.taus) for s in predictors.selections},
        )
        reports.append(report)
        if on_iteration is not None:
            on_iteration(report)
    return reports


def _most_promising(population, cost_column: int) -> np.ndarray:  # noqa: ANN001 (a pymoo Population)
    """The inner search's final population, best non-domination rank first; within a rank, spread along
    the first cost objective so the real evaluations cover the predicted front rather than one end of it."""
    X, F = population.get("X"), population.get("F")
    feasible = population.get("CV").ravel() <= 0
    order: list[int] = []
    for group in (np.nonzero(feasible)[0], np.nonzero(~feasible)[0]):
        if len(group) == 0:
            continue
        for front in NonDominatedSorting().do(F[group]):
            members = group[front]
            members = members[np.argsort(F[members, cost_column])]
            order.extend(_spread(list(members)))
    return X[order]


def _spread(members: list[int]) -> list[int]:
    """Reorder so that any prefix is spread evenly over the list (ends first, then bisection)."""
    if len(members) <= 2:
        return members
    picked, queue = [0, len(members) - 1], [(0, len(members) - 1)]
    while queue:
        low, high = queue.pop(0)
        if high - low < 2:
            continue
        middle = (low + high) // 2
        picked.append(middle)
        queue += [(low, middle), (middle, high)]
    return [members[i] for i in picked]
