"""Variation operators for the integer genome (every gene an index into an unordered choice list)."""

from __future__ import annotations

import numpy as np
from pymoo.core.mutation import Mutation
from pymoo.core.sampling import Sampling


class ResetMutation(Mutation):
    """Each gene is redrawn, with probability `rate` / number of genes (at least one gene on average per
    child), uniformly among its *other* choices. The genes are indices into unordered choice lists
    (policies, blocks, exit on/off), so a random reset suits them better than polynomial steps."""

    def __init__(self, rate: float = 1.0) -> None:
        super().__init__()
        self.rate = rate

    def _do(self, problem, X, random_state=None, **kwargs):  # noqa: ANN001, ANN003, ANN201 (pymoo's signature)
        X = np.asarray(X).astype(float).copy()
        low, high = problem.xl.astype(int), problem.xu.astype(int)
        chance = min(1.0, self.rate / max(1, problem.n_var))
        hits = random_state.random(X.shape) < chance
        for row, col in zip(*np.nonzero(hits), strict=True):
            span = high[col] - low[col]
            if span <= 0:
                continue
            step = random_state.integers(1, span + 1)  # never the current value
            X[row, col] = low[col] + (int(X[row, col]) - low[col] + step) % (span + 1)
        return X


class SeededSampling(Sampling):
    """The first population: the given rows (seeds, e.g. the static search's returned networks), then random
    rows, of which `exits_off_share` have every exit switched off (the static networks inside the space, so
    early exit competes with them from the start); `exit_columns`: the columns of the exits' on/off genes."""

    def __init__(self, seeds: np.ndarray, exit_columns: list[int], exits_off_share: float = 0.25) -> None:
        super().__init__()
        self.seeds = seeds
        self.exit_columns = exit_columns
        self.exits_off_share = exits_off_share

    def _do(self, problem, n_samples, random_state=None, **kwargs):  # noqa: ANN001, ANN003, ANN201 (pymoo's signature)
        seeds = self.seeds[:n_samples]
        rest = n_samples - len(seeds)
        low, high = problem.xl.astype(int), problem.xu.astype(int)
        drawn = random_state.integers(low, high + 1, size=(rest, problem.n_var))
        if self.exit_columns:
            off = random_state.random(rest) < self.exits_off_share
            drawn[np.ix_(off, self.exit_columns)] = 0
        return np.vstack([seeds, drawn]).astype(float) if len(seeds) else drawn.astype(float)
