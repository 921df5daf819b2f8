"""pymoo algorithms for the integer genome, by name (`search.algorithm` in a workload)."""

from __future__ import annotations

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.core.mutation import Mutation
from pymoo.operators.crossover.ux import UX
from pymoo.operators.sampling.rnd import IntegerRandomSampling

from codesign.config.workload import ALGORITHMS


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


def make_algorithm(name: str, population: int, n_obj: int, seed: int) -> Algorithm:
    """A pymoo algorithm with integer sampling, uniform crossover and reset mutation; duplicates removed."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}: expected one of {list(ALGORITHMS)}")
    operators = dict(
        sampling=IntegerRandomSampling(),
        crossover=UX(),
        mutation=ResetMutation(),
        eliminate_duplicates=True,
    )
    if name == "nsga2":
        from pymoo.algorithms.moo.nsga2 import NSGA2

        return NSGA2(pop_size=population, **operators)
    if name == "smsemoa":
        from pymoo.algorithms.moo.sms import SMSEMOA

        return SMSEMOA(pop_size=population, **operators)
    if name == "spea2":
        from pymoo.algorithms.moo.spea2 import SPEA2

        return SPEA2(pop_size=population, **operators)
    from pymoo.util.ref_dirs import get_reference_directions

    directions = get_reference_directions("energy", n_obj, max(population, n_obj + 1), seed=seed)
    if name == "ctaea":  # constrained two-archive EA: population = number of reference directions
        from pymoo.algorithms.moo.ctaea import CTAEA

        return CTAEA(ref_dirs=directions, **operators)
    if name == "nsga3":
        from pymoo.algorithms.moo.nsga3 import NSGA3

        return NSGA3(ref_dirs=directions, pop_size=population, **operators)
    from pymoo.algorithms.moo.unsga3 import UNSGA3

    return UNSGA3(ref_dirs=directions, pop_size=population, **operators)
