from __future__ import annotations

import numpy as np

from codesign.search.operators import ResetMutation
from tests.search.test_algorithms import _Toy


def test_reset_mutation_changes_genes_to_other_valid_choices():
    problem = _Toy()
    X = np.ones((200, 5))
    mutated = ResetMutation(rate=2.0)._do(problem, X, random_state=np.random.default_rng(0))
    changed = mutated != X
    assert changed.any() and set(np.unique(mutated[changed])) <= {0.0, 2.0, 3.0}
    assert abs(changed.mean() - 2 / 5) < 0.05
