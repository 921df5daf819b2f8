from __future__ import annotations

import numpy as np

from codesign.search.surrogate import ObjectivePredictors, cross_validated_tau


def test_predictor_selection_ranks_a_smooth_function_and_reports_every_kind():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 4, size=(40, 4)) / 3
    y_smooth = X @ np.array([3.0, -1.0, 0.5, 2.0])
    y_step = (X[:, 0] > 0.5).astype(float) + 0.01 * X[:, 1]
    predictors = ObjectivePredictors(("smooth", "step"), ("rbf", "mlp", "tree", "gp"), seed=0).fit(
        X, np.column_stack([y_smooth, y_step])
    )
    smooth, step = predictors.selections
    assert set(smooth.taus) == {"rbf", "mlp", "tree", "gp"}
    assert smooth.tau == max(smooth.taus.values()) > 0.9
    assert step.tau > 0.5
    X_new = rng.integers(0, 4, size=(30, 4)) / 3
    predicted = predictors.predict(X_new)
    assert predicted.shape == (30, 2)
    assert np.corrcoef(predicted[:, 0], X_new @ np.array([3.0, -1.0, 0.5, 2.0]))[0, 1] > 0.95
    # a target that is pure noise is not ranked well by anything
    assert cross_validated_tau("tree", X, rng.normal(size=40), folds=5, seed=0) < 0.4


def test_predictor_selection_survives_a_kind_that_cannot_fit():
    # two identical binary genes: affinely dependent features, on which an RBF with a linear tail is singular
    rng = np.random.default_rng(1)
    column = rng.integers(0, 2, size=12).astype(float)
    X = np.column_stack([column, column, rng.integers(0, 2, size=12), rng.integers(0, 3, size=12) / 2])
    y = X @ np.array([1.0, 1.0, 2.0, -1.0]) + 0.01 * rng.normal(size=12)
    predictors = ObjectivePredictors(("y",), ("rbf", "tree"), seed=0).fit(X, y[:, None])
    taus = predictors.selections[0].taus
    assert taus["rbf"] > -1.0 and taus["tree"] > -1.0  # every fold fitted (-1 marks a kind that failed)
    assert predictors.predict(X).shape == (12, 1)
