from __future__ import annotations

import numpy as np
import pytest

from codesign.exits import CachedExits, score_margin


def test_score_margin_is_top1_minus_top2_probability():
    logits = np.array([[0.0, 0.0, 0.0], [np.log(6.0), np.log(3.0), 0.0]])
    np.testing.assert_allclose(score_margin(logits), [0.0, 0.6 - 0.3])


def test_simulation_counts_exits_and_accuracy_exactly():
    cached = CachedExits(
        margins=np.array([[0.9, 0.1, 0.6, 0.2], [0.9, 0.8, 0.1, 0.3], [0.5, 0.5, 0.5, 0.5]]),
        correct=np.array([[True, False, False, False], [True, True, False, False], [True, True, True, True]]),
    )
    stats = cached.simulate((0, 1, 2), (0.5, 0.5))
    # input0 -> exit0 (right), input1 -> exit1 (right), input2 -> exit0 (wrong), input3 -> final (right)
    assert stats.fractions == (0.5, 0.25, 0.25)
    assert stats.accuracy == pytest.approx(0.75)
    only_final = cached.simulate((2,), ())
    assert only_final.fractions == (1.0,) and only_final.accuracy == 1.0
    never = cached.simulate((0, 2), (1.01,))
    assert never.fractions == (0.0, 1.0)
    skip_middle = cached.simulate((1, 2), (0.0,))
    assert skip_middle.fractions == (1.0, 0.0) and skip_middle.accuracy == 0.5


def test_threshold_count_is_checked():
    cached = CachedExits(margins=np.zeros((2, 3)), correct=np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError):
        cached.simulate((0, 1), ())
