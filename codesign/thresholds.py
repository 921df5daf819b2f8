"""Exit thresholds chosen from cached exit statistics: the cheapest set of thresholds whose accuracy stays
within the allowed drop of the reference (the final exit, or the best exit), searched without running the
network again."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from statistics import NormalDist

import numpy as np

from codesign.exits import DROP_REFERENCES, CachedExits, ExitStats


def tune_thresholds(
    cached: CachedExits,
    active: tuple[int, ...],
    policy: str,
    exit_energies: list[float],
    max_accuracy_drop: float,
    grid: tuple[float, ...] | None = None,
    confidence: float = 0.0,
    reference: str = "final",
) -> tuple[tuple[float, ...], ExitStats]:
    """Thresholds minimising expected energy subject to accuracy >= reference accuracy - max_accuracy_drop.

    Exact over the grid on the split given (validation): every threshold vector is simulated from the
    cached confidences. Falls back to coordinate descent when the grid product exceeds 20,000 vectors.

    `reference`: what the drop is measured against. "final": the final exit's accuracy. "best": the most
    accurate the network gets with its own exits and policy (the final exit's, or a threshold vector's
    where the exits together classify better). With "final", a weak final exit (inherited weights) lets
    the first exit take every input at no loss, and backbones that share it become one point.

    `confidence` > 0 asks for the accuracy constraint to hold with that one-sided confidence rather than
    on the split itself: the lower confidence bound of the paired accuracy difference against the
    reference (mean - z * standard error over inputs; normal approximation) must reach -max_accuracy_drop.
    Without it, the thresholds that just meet the constraint on validation are the ones picked from
    thousands, and they lose a few tenths of a point on unseen data.
    """
    early = len(active) - 1
    if early == 0:
        return (), cached.simulate(active, (), policy)
    if not 0.0 <= confidence < 1.0:
        raise ValueError(f"confidence must be in [0, 1), got {confidence}")
    if reference not in DROP_REFERENCES:
        raise ValueError(f"reference must be one of {DROP_REFERENCES}, got {reference!r}")
    if grid is None:
        values = np.unique(np.quantile(cached.confidences[policy][list(active[:-1])], np.linspace(0, 1, 21)))
        grid = (*tuple(float(v) for v in values), 1.01)
    reference_correct = cached.correct[active[-1]].astype(float)
    if reference == "best":
        _, most_accurate = _minimise(
            lambda t: -float(cached.outcomes(active, t, policy)[1].mean()), grid, early
        )
        reference_correct = cached.outcomes(active, most_accurate, policy)[1].astype(float)
    else:
        most_accurate = None
    z = NormalDist().inv_cdf(confidence) if confidence > 0 else 0.0
    energies = np.asarray(exit_energies, dtype=float)

    def score(thresholds: tuple[float, ...]) -> float:
        taken, correct = cached.outcomes(active, thresholds, policy)
        difference = correct.astype(float) - reference_correct
        bound = difference.mean()
        if z > 0:
            bound -= z * difference.std(ddof=1) / np.sqrt(len(difference))
        return float(energies[taken].mean()) if bound >= -max_accuracy_drop - 1e-12 else float("inf")

    # coordinate descent starts from a feasible vector: the most accurate one, when the drop is measured from it
    _, best = _minimise(score, grid, early, start=most_accurate)
    thresholds = tuple(float(t) for t in best)
    return thresholds, cached.simulate(active, thresholds, policy)


def _minimise(
    objective: Callable[[tuple[float, ...]], float],
    grid: tuple[float, ...],
    early: int,
    start: tuple[float, ...] | None = None,
) -> tuple[float, tuple[float, ...]]:
    """The threshold vector of lowest objective: every vector of the grid when there are at most 20,000,
    else coordinate descent from `start` (default: all inputs at the final exit); ties keep the earlier
    vector, and the first is all inputs at the final exit."""
    never = tuple(1.01 for _ in range(early))
    best = (objective(never), never)
    if len(grid) ** early <= 20_000:
        for candidate in itertools.product(grid, repeat=early):
            value = objective(candidate)
            if value < best[0]:
                best = (value, candidate)
        return best
    if start is not None and start != never:
        value = objective(start)
        if value < best[0]:
            best = (value, start)
    current = list(best[1])
    improved = True
    while improved:
        improved = False
        for position in range(early):
            for value in grid:
                trial = tuple(current[:position] + [value] + current[position + 1 :])
                score = objective(trial)
                if score < best[0]:
                    best, current, improved = (score, trial), list(trial), True
    return best
