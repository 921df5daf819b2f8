from __future__ import annotations

import numpy as np
import pytest
from pymoo.core.problem import Problem
from pymoo.optimize import minimize

from codesign.search.algorithms import ALGORITHMS, make_algorithm


class _Toy(Problem):
    """Two conflicting objectives over 5 integer genes in 0..3; the front is known: sum(x) trades off."""

    def __init__(self):
        super().__init__(n_var=5, n_obj=2, xl=np.zeros(5), xu=np.full(5, 3), vtype=int)

    def _evaluate(self, X, out, *args, **kwargs):
        X = np.round(X)
        out["F"] = np.column_stack([X.sum(axis=1), (3 - X).sum(axis=1) + 0.1 * X[:, 0]])


@pytest.mark.parametrize("name", ALGORITHMS)
def test_every_algorithm_runs_on_integers_and_improves(name):
    result = minimize(_Toy(), make_algorithm(name, 20, 2, seed=0), ("n_gen", 15), seed=0)
    X = result.pop.get("X")
    assert np.allclose(X, np.round(X)) and X.min() >= 0 and X.max() <= 3
    # the true front: for each gene sum s, x0 as small as possible -> (s, 15 - s + 0.1 max(0, s - 12))
    true_front = {(s, round(15 - s + 0.1 * max(0, s - 12), 6)) for s in range(16)}
    found = {(round(a, 6), round(b, 6)) for a, b in result.F}
    assert len(found & true_front) >= 12, sorted(found)
