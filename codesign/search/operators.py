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
    """The first population: the given rows (seeds, e.g. the static search's returned networks), each seed's
    early-exit twin (`exit_twins`), then random rows (at least half of `n_samples`), of which
    `exits_off_share` have every exit switched off (the static networks inside the space, so early exit
    competes with them from the start). `exit_columns`: the columns of the exits' on/off genes;
    `exit_gene_columns`: those of the other exit genes (branches, policy, accuracy drop)."""

    def __init__(
        self,
        seeds: np.ndarray,
        exit_columns: list[int],
        exit_gene_columns: list[int] | None = None,
        exits_off_share: float = 0.25,
    ) -> None:
        super().__init__()
        self.seeds = seeds
        self.exit_columns = exit_columns
        self.exit_gene_columns = exit_gene_columns or []
        self.exits_off_share = exits_off_share

    def _do(self, problem, n_samples, random_state=None, **kwargs):  # noqa: ANN001, ANN003, ANN201 (pymoo's signature)
        low, high = problem.xl.astype(int), problem.xu.astype(int)
        twins = exit_twins(self.seeds, self.exit_columns, self.exit_gene_columns, low, high, random_state)
        rest = max(n_samples - len(self.seeds) - len(twins), n_samples // 2 if len(self.seeds) else n_samples)
        drawn = random_state.integers(low, high + 1, size=(rest, problem.n_var))
        if self.exit_columns:
            off = random_state.random(rest) < self.exits_off_share
            drawn[np.ix_(off, self.exit_columns)] = 0
        return np.vstack([self.seeds.reshape(-1, problem.n_var), twins, drawn]).astype(float)


def exit_twins(
    seeds: np.ndarray,
    exit_columns: list[int],
    exit_gene_columns: list[int],
    low: np.ndarray,
    high: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Each static seed with every early exit on and its exit branches, policy and accuracy drop drawn at
    random: whether exits pay on that very backbone. A twin shares its seed's backbone and fitted static
    weights, so it costs its heads' fitting, layer costs and a threshold tuning, not a backbone training."""
    if not exit_columns or not len(seeds):
        return np.empty((0, len(low)), dtype=int)
    twins = np.asarray(seeds, dtype=int).copy()
    twins[:, exit_columns] = 1
    for column in exit_gene_columns:
        twins[:, column] = rng.integers(low[column], high[column] + 1, size=len(twins))
    return twins
