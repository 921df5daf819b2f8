from __future__ import annotations

import numpy as np
import pytest

from codesign.exits import (
    POLICIES,
    CachedExits,
    entropy_confidence,
    max_probability,
    score_margin,
    softmax,
)
from codesign.thresholds import tune_thresholds


def test_score_margin_is_top1_minus_top2_probability():
    logits = np.array([[0.0, 0.0, 0.0], [np.log(6.0), np.log(3.0), 0.0]])
    np.testing.assert_allclose(score_margin(logits), [0.0, 0.6 - 0.3])


def test_simulation_counts_exits_and_accuracy_exactly():
    cached = CachedExits(
        confidences={
            "score_margin": np.array([[0.9, 0.1, 0.6, 0.2], [0.9, 0.8, 0.1, 0.3], [0.5, 0.5, 0.5, 0.5]])
        },
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
    cached = CachedExits(confidences={"score_margin": np.zeros((2, 3))}, correct=np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError):
        cached.simulate((0, 1), ())


def test_policies_rank_confident_predictions_higher():
    confident, unsure = np.array([[10.0, 0.0, 0.0]]), np.array([[1.0, 0.9, 0.8]])
    for name, policy in POLICIES.items():
        if policy.learned:
            continue  # a fitted model, tested in test_runtime
        assert policy.confidence(confident)[0] > policy.confidence(unsure)[0], name
        assert 0.0 <= policy.confidence(unsure)[0] <= 1.0
    assert entropy_confidence(np.zeros((1, 4)))[0] == pytest.approx(0.0)
    assert max_probability(np.zeros((1, 4)))[0] == pytest.approx(0.25)


def test_threshold_tuning_is_exact_on_the_grid_and_respects_the_accuracy_floor():
    rng = np.random.default_rng(0)
    n = 400
    confidence = rng.uniform(size=(2, n))
    # the early exit is right exactly when it is confident: high thresholds are safe, low ones are not
    correct = np.stack([confidence[0] > 0.4, np.ones(n, dtype=bool)])
    cached = CachedExits(confidences={"score_margin": confidence}, correct=correct)
    grid = tuple(np.round(np.linspace(0, 1, 11), 2))
    thresholds, stats = tune_thresholds(cached, (0, 1), "score_margin", [1.0, 10.0], 0.0, grid)
    assert stats.accuracy == 1.0
    # brute force over the same grid
    feasible = [t for t in grid if cached.simulate((0, 1), (t,)).accuracy >= 1.0]
    best = min(feasible, key=lambda t: cached.simulate((0, 1), (t,)).fractions[1])
    assert thresholds == (best,) and best == pytest.approx(0.4)
    loose, loose_stats = tune_thresholds(cached, (0, 1), "score_margin", [1.0, 10.0], 0.5, grid)
    assert loose_stats.fractions[0] > stats.fractions[0] and loose_stats.accuracy >= 0.5


def test_confidence_bound_tuning_holds_the_drop_on_unseen_inputs_where_plain_tuning_does_not():
    """Thresholds tuned to just meet a zero drop on one sample overfit it; with a 95% lower confidence
    bound on the paired accuracy difference they keep the drop on a fresh sample from the same source."""

    def sample(seed: int, n: int = 4000) -> CachedExits:
        rng = np.random.default_rng(seed)
        confidence = rng.uniform(size=(2, n))
        # the early exit is right with probability rising with its confidence; the final exit always is
        correct = np.stack([rng.uniform(size=n) < 0.5 + 0.5 * confidence[0], np.ones(n, dtype=bool)])
        return CachedExits(confidences={"max_prob": confidence}, correct=correct)

    grid = tuple(np.round(np.linspace(0.5, 1.0, 101), 3))
    drop, energies = 0.01, [1.0, 10.0]
    plain_drops, bounded_drops = [], []
    for seed in range(10):
        tuning, unseen = sample(seed), sample(1000 + seed)
        plain, plain_stats = tune_thresholds(tuning, (0, 1), "max_prob", energies, drop, grid)
        bounded, bounded_stats = tune_thresholds(
            tuning, (0, 1), "max_prob", energies, drop, grid, confidence=0.95
        )
        assert 1.0 - plain_stats.accuracy <= drop + 1e-12
        # stricter: fewer inputs leave early, and the bound itself holds on the tuning sample
        assert bounded[0] >= plain[0] and bounded_stats.fractions[0] <= plain_stats.fractions[0]
        taken, correct = tuning.outcomes((0, 1), bounded, "max_prob")
        difference = correct.astype(float) - 1.0
        assert difference.mean() - 1.645 * difference.std(ddof=1) / np.sqrt(len(difference)) >= -drop - 1e-9
        plain_drops.append(1.0 - unseen.simulate((0, 1), plain, "max_prob").accuracy)
        bounded_drops.append(1.0 - unseen.simulate((0, 1), bounded, "max_prob").accuracy)
    assert sum(d > drop for d in plain_drops) >= 3  # plain tuning overshoots the drop on unseen inputs
    assert sum(d > drop for d in bounded_drops) == 0
    with pytest.raises(ValueError, match="confidence"):
        tune_thresholds(sample(0), (0, 1), "max_prob", energies, drop, grid, confidence=1.0)


def test_drop_against_the_best_the_exits_reach_tells_backbones_with_weak_final_exits_apart():
    """Two backbones share exit 0 (right on 82%) and have weak final exits (81%). Against the final exit, a
    1% drop lets exit 0 take every input on both: one point. Against the best the network's own exits
    reach, backbone A (whose final exit is right where exit 0 is unsure) keeps its final exit at 100%;
    backbone B (whose final exit adds nothing) still leaves everything at exit 0."""
    n = 1000
    exit0_confidence = np.where(np.arange(n) < 700, 0.9, 0.3)
    exit0_correct = np.arange(n) < 820
    final_a = np.arange(n) >= 190
    final_b = np.arange(n) < 810

    def backbone(final: np.ndarray) -> CachedExits:
        return CachedExits(
            confidences={"max_prob": np.stack([exit0_confidence, np.ones(n)])},
            correct=np.stack([exit0_correct, final]),
        )

    grid, energies = (0.0, 0.5, 1.01), [1.0, 10.0]
    against_final = [
        tune_thresholds(backbone(f), (0, 1), "max_prob", energies, 0.01, grid)[1] for f in (final_a, final_b)
    ]
    assert [s.fractions for s in against_final] == [(1.0, 0.0), (1.0, 0.0)]
    assert [s.accuracy for s in against_final] == pytest.approx([0.82, 0.82])
    a, a_stats = tune_thresholds(
        backbone(final_a), (0, 1), "max_prob", energies, 0.01, grid, reference="best"
    )
    assert a == (0.5,) and a_stats.fractions == (0.7, 0.3) and a_stats.accuracy == 1.0
    b, b_stats = tune_thresholds(
        backbone(final_b), (0, 1), "max_prob", energies, 0.01, grid, reference="best"
    )
    assert b == (0.0,) and b_stats.fractions == (1.0, 0.0) and b_stats.accuracy == pytest.approx(0.82)
    with pytest.raises(ValueError, match="reference"):
        tune_thresholds(backbone(final_a), (0, 1), "max_prob", energies, 0.01, grid, reference="oracle")


def test_drop_against_the_best_holds_with_coordinate_descent_too():
    """Four early exits make the grid too large to enumerate; coordinate descent then starts from the most
    accurate vector, so the accuracy limit still holds where the all-final start fails it (weak final exit)."""
    rng = np.random.default_rng(0)
    n = 1000
    confidence = rng.uniform(0, 0.5, (5, n))
    correct = np.zeros((5, n), dtype=bool)
    correct[4, 200:700] = True  # final exit right on 50%
    confidence[0, :100], correct[0, :100] = 0.99, True  # exit 0 sure and right on another 10%
    confidence[1, 100:200], correct[1, 100:200] = 0.99, True  # exit 1 likewise
    cached = CachedExits(confidences={"score_margin": confidence}, correct=correct)
    energies = [1.0, 2.0, 3.0, 4.0, 10.0]
    thresholds, stats = tune_thresholds(
        cached, (0, 1, 2, 3, 4), "score_margin", energies, 0.01, reference="best"
    )
    assert stats.accuracy >= 0.70 - 0.01 - 1e-12 and thresholds != (1.01,) * 4


def test_temperature_makes_an_overconfident_exit_calibrated():
    """Logits ten times too sharp: the fitted temperature undoes it (about 10), the calibration error falls
    to near zero, and no prediction changes."""
    from codesign.exits import calibration_error, fit_temperature, max_probability

    rng = np.random.default_rng(0)
    n, classes = 4000, 10
    true_logits = rng.normal(0, 1.5, (n, classes))
    labels = np.array([rng.choice(classes, p=p) for p in softmax(true_logits)])
    sharp = 10 * true_logits
    temperature = fit_temperature(sharp, labels)
    assert temperature == pytest.approx(10, rel=0.15)
    correct = sharp.argmax(1) == labels
    before = calibration_error(max_probability(sharp), correct)
    after = calibration_error(max_probability(sharp / temperature), correct)
    assert before > 0.2 and after < 0.03
    cached = CachedExits.from_logits([sharp, sharp], labels, temperatures=[temperature, 1.0])
    assert cached.calibration_errors[0] == pytest.approx(after) and cached.calibration_errors_raw[
        0
    ] == pytest.approx(before)
    assert cached.calibration_errors[1] == pytest.approx(before)  # temperature 1: nothing changes
    assert (cached.correct[0] == correct).all()


def test_calibration_error_by_hand():
    from codesign.exits import calibration_error

    # two bins: confidence 0.95 (2 inputs, 1 right: gap 0.45) and 0.55 (2 inputs, both right: gap 0.45)
    assert calibration_error(np.array([0.95, 0.95, 0.55, 0.55]), np.array([1, 0, 1, 1])) == pytest.approx(
        0.45
    )
    assert calibration_error(np.array([1.0, 1.0]), np.array([1, 1])) == 0.0


def test_thresholds_from_exit_fractions_land_inside_the_confidences():
    """Each threshold takes the asked share of the inputs that reach its exit, whatever the confidences' scale."""
    rng = np.random.default_rng(1)
    confidence = np.stack([rng.uniform(0, 0.05, 1000), rng.uniform(0.9, 1.0, 1000), np.ones(1000)])
    cached = CachedExits(confidences={"score_margin": confidence}, correct=np.ones((3, 1000), dtype=bool))
    thresholds = cached.thresholds_for_fractions((0, 1, 2), (0.3, 0.5))
    assert 0 < thresholds[0] < 0.05 and 0.9 < thresholds[1] < 1.0
    stats = cached.simulate((0, 1, 2), thresholds)
    assert stats.fractions == pytest.approx((0.3, 0.35, 0.35), abs=0.002)
    assert cached.thresholds_for_fractions((1, 2), (0.1,)) == pytest.approx((np.sort(confidence[1])[-100],))
    with pytest.raises(ValueError, match="one fraction"):
        cached.thresholds_for_fractions((0, 1, 2), (0.3,))
