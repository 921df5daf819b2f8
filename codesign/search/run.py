"""The search's one entry point: the workload's algorithm on real evaluations, or surrogate-assisted."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from codesign.search.algorithms import make_algorithm
from codesign.search.operators import SeededSampling
from codesign.search.problem import CodesignProblem, EvaluateBatchFn
from codesign.search.settings import SearchSettings
from codesign.search.surrogate_search import IterationReport, run_surrogate_search
from codesign.space import SearchSpace
from codesign.spec import CandidateSpec


def run_search(
    space: SearchSpace,
    settings: SearchSettings,
    evaluate_batch: EvaluateBatchFn,
    on_surrogate_round: Callable[[IterationReport], None] | None = None,
    seeds: Sequence[CandidateSpec] = (),
) -> None:
    """The workload's search: surrogate-assisted if `settings.surrogate` (`on_surrogate_round` receives each
    round's predictor report), else its pymoo algorithm on real evaluations. Results arrive through
    `evaluate_batch`, which stores them; nothing is returned. `seeds`: static networks (exits off) the first
    population starts with, e.g. a static search's returned networks."""
    if settings.surrogate is not None:
        run_surrogate_search(space, settings, evaluate_batch, on_surrogate_round, seeds)
    else:
        run_algorithm(space, settings, evaluate_batch, seeds)


def run_algorithm(
    space: SearchSpace,
    settings: SearchSettings,
    evaluate_batch: EvaluateBatchFn,
    seeds: Sequence[CandidateSpec] = (),
) -> None:
    """`settings.algorithm` (NSGA-II by default) for `settings.generations` generations, every candidate real;
    the first population holds the seeds and their early-exit twins (`operators.exit_twins`), and a quarter
    of the rest has every exit off."""
    from pymoo.optimize import minimize

    problem = CodesignProblem(space, evaluate_batch, settings.objectives, settings.constraints)
    sampling = SeededSampling(problem.seed_rows(seeds), problem.exit_columns(), problem.exit_gene_columns())
    algorithm = make_algorithm(
        settings.algorithm, settings.population, len(settings.objectives), settings.seed, sampling
    )
    minimize(problem, algorithm, ("n_gen", settings.generations), seed=settings.seed, verbose=False)
