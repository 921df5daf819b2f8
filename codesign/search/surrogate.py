"""Predictors of objective values from genes, chosen by cross-validated Kendall tau (as in EDANAS/NACHOS).

Features are gene indices scaled to [0, 1]. Each target (an objective or a constraint) gets its own
predictor: every kind in `kinds` is cross-validated on the archive and the one whose out-of-fold
predictions rank the candidates best (Kendall tau) is refitted on the whole archive. The search only
needs the ranking to be right, which is why rank correlation, not squared error, picks the model.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.registry import Registry


class _Standardised:
    """Wraps a regressor so that it sees a zero-mean, unit-variance target."""

    def __init__(self, model) -> None:  # noqa: ANN001 (any scikit-learn style regressor)
        self.model = model

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Standardised:
        self.mean, self.std = float(y.mean()), float(y.std()) or 1.0
        self.model.fit(X, (y - self.mean) / self.std)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(X)).ravel() * self.std + self.mean


class _RBF:
    """scipy's RBF interpolator, smoothed so that noisy or repeated points do not make it singular."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> _RBF:
        from scipy.interpolate import RBFInterpolator

        X, y = _merge_repeats(X, y)
        # a linear tail needs affinely independent points (binary genes equal across a fold are not)
        affine = np.column_stack([np.ones(len(X)), X])
        degree = 1 if np.linalg.matrix_rank(affine) == affine.shape[1] else 0
        self.model = RBFInterpolator(X, y, kernel="thin_plate_spline", smoothing=1e-3, degree=degree)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model(X)


def _merge_repeats(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    unique, inverse = np.unique(X, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    return unique, np.bincount(inverse, weights=y) / np.bincount(inverse)


def _rbf(seed: int) -> _RBF:
    """Radial basis functions (thin-plate spline, smoothed)."""
    return _RBF()


def _mlp(seed: int) -> _Standardised:
    """Multi-layer perceptron."""
    from sklearn.neural_network import MLPRegressor

    return _Standardised(
        MLPRegressor(hidden_layer_sizes=(32, 32), alpha=1e-3, max_iter=3000, random_state=seed)
    )


def _tree(seed: int):  # noqa: ANN202 (a scikit-learn regressor)
    """Regression tree."""
    from sklearn.tree import DecisionTreeRegressor

    return DecisionTreeRegressor(min_samples_leaf=2, random_state=seed)


def _gp(seed: int):  # noqa: ANN202 (a scikit-learn regressor)
    """Gaussian process (Matern 5/2 plus white noise)."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = ConstantKernel(1.0) * Matern(length_scale=1.0, nu=2.5) + WhiteKernel(1e-2)
    return GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=seed)


# Predictor kind -> factory(seed) of an unfitted model with `fit(X, y)` and `predict(X)`.
PREDICTORS: Registry[Callable[[int], Any]] = Registry(
    "surrogate predictor", {"rbf": _rbf, "mlp": _mlp, "tree": _tree, "gp": _gp}
)


def make_predictor(kind: str, seed: int):  # noqa: ANN201 (fit/predict duck type)
    return PREDICTORS[kind](seed)


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    from scipy.stats import kendalltau

    value = kendalltau(a, b).statistic
    return 0.0 if np.isnan(value) else float(value)


def cross_validated_tau(kind: str, X: np.ndarray, y: np.ndarray, folds: int, seed: int) -> float:
    """Kendall tau between out-of-fold predictions and the truth, pooled over `folds` folds."""
    from sklearn.model_selection import KFold

    predicted = np.empty_like(y)
    for train, held_out in KFold(min(folds, len(y)), shuffle=True, random_state=seed).split(X):
        predicted[held_out] = make_predictor(kind, seed).fit(X[train], y[train]).predict(X[held_out])
    return _tau(predicted, y)


@dataclass(frozen=True)
class Selection:
    """The predictor chosen for one target and what every candidate kind scored."""

    target: str
    kind: str
    taus: dict[str, float]  # cross-validated Kendall tau per predictor kind

    @property
    def tau(self) -> float:
        return self.taus[self.kind]


class ObjectivePredictors:
    """One selected, refitted predictor per target column."""

    def __init__(
        self, targets: tuple[str, ...], kinds: tuple[str, ...], folds: int = 5, seed: int = 0
    ) -> None:
        self.targets, self.kinds, self.folds, self.seed = targets, kinds, folds, seed
        self.models: list = []
        self.selections: list[Selection] = []

    def fit(self, X: np.ndarray, Y: np.ndarray) -> ObjectivePredictors:
        from threadpoolctl import threadpool_limits

        self.models, self.selections = [], []
        # One BLAS thread: fits are then bit-identical whatever the machine's thread settings, which keeps a
        # resumed surrogate search on the same path as the run it continues.
        with warnings.catch_warnings(), threadpool_limits(1):  # and no convergence chatter from tiny archives
            warnings.simplefilter("ignore")
            for column, target in enumerate(self.targets):
                y = Y[:, column]
                taus = {kind: self._tau_or_worst(kind, X, y) for kind in self.kinds}
                ranked = sorted(self.kinds, key=lambda k: (-taus[k], self.kinds.index(k)))
                for kind in ranked:  # the best kind that fits the whole archive
                    try:
                        model = make_predictor(kind, self.seed).fit(X, y)
                    except (np.linalg.LinAlgError, ValueError):
                        continue
                    self.selections.append(Selection(target, kind, taus))
                    self.models.append(model)
                    break
                else:
                    raise RuntimeError(f"no surrogate predictor could be fitted for {target!r}")
        return self

    def _tau_or_worst(self, kind: str, X: np.ndarray, y: np.ndarray) -> float:
        """Cross-validated tau; a kind that cannot be fitted on some fold scores -1 instead of stopping the search."""
        try:
            return cross_validated_tau(kind, X, y, self.folds, self.seed)
        except (np.linalg.LinAlgError, ValueError):
            return -1.0

    def predict(self, X: np.ndarray) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return np.column_stack([model.predict(X) for model in self.models])


def rank_agreement(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Kendall tau of predictions against real values on points the predictor had not seen."""
    return _tau(np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float))
