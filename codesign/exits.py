"""Exit policies and exit statistics from cached logits: accuracy and exit fractions for any threshold vector.

An exit policy turns an exit's logits into a per-input confidence; an input leaves at the first active
early exit whose confidence is >= that exit's threshold. `POLICIES` is the registry of policies (the
search, the ONNX runtime and the manifest of a segmented model all use it).

A network's per-exit logits are computed once per split; every threshold setting and every subset
of active exits is then simulated without running the network again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.registry import Registry


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(logits / T) on these labels
    (temperature scaling, Guo et al. 2017): one scalar per exit head, fitted on validation. It changes no
    prediction, only how confident each one says it is. Searched on log T in [1/20, 20]."""
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        scaled = logits / np.exp(log_t)
        shifted = scaled - scaled.max(axis=-1, keepdims=True)
        log_z = np.log(np.exp(shifted).sum(axis=-1))
        return float((log_z - shifted[rows, labels]).mean())

    bound = math.log(20.0)
    fitted = minimize_scalar(nll, bounds=(-bound, bound), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(fitted.x))


def calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: the input-weighted mean gap between confidence and accuracy over `bins`
    equal-width confidence bins (Guo et al. 2017; 15 bins is their setting)."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    if confidence.size == 0:
        return 0.0
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(which):
        members = which == b
        total += members.sum() * abs(confidence[members].mean() - correct[members].mean())
    return float(total / confidence.size)


def score_margin(logits: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 softmax probability, per input (EDANAS/NACHOS confidence)."""
    top2 = np.partition(softmax(logits), -2, axis=-1)[..., -2:]
    return top2[..., 1] - top2[..., 0]


def max_probability(logits: np.ndarray) -> np.ndarray:
    """Largest softmax probability (BranchyNet-style confidence)."""
    return softmax(logits).max(axis=-1)


def entropy_confidence(logits: np.ndarray) -> np.ndarray:
    """1 - normalised entropy of the softmax: 1 for a one-hot prediction, 0 for a uniform one."""
    p = softmax(logits)
    entropy = -(p * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=-1)
    return 1.0 - entropy / np.log(p.shape[-1])


def _features(logits: np.ndarray) -> np.ndarray:
    """What the learned policy sees of an exit's logits: max probability, score margin, entropy confidence
    and the top logit's distance from the mean logit (N x 4)."""
    return np.stack(
        [
            max_probability(logits),
            score_margin(logits),
            entropy_confidence(logits),
            logits.max(axis=-1) - logits.mean(axis=-1),
        ],
        axis=1,
    )


@dataclass(frozen=True)
class LearnedConfidence:
    """A learned exit policy's fitted model (as in NACHOS and EENet): per exit, a logistic regression of
    "this exit's prediction is right" on features of the exit's logits (`_features`), fitted on training-
    split logits, never on the split that tunes thresholds. Confidence = its predicted probability.

    Only the exit's own logits are used, so the policy of an exit does not depend on which earlier exits
    are switched on (the search compares exit subsets from one set of cached logits)."""

    # exit (stage index) -> (feature means, feature scales, weights, bias)
    exits: dict[int, tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...], float]]

    @classmethod
    def fit(
        cls, exit_logits: Sequence[np.ndarray], labels: np.ndarray, exit_ids: Sequence[int]
    ) -> LearnedConfidence:
        from sklearn.linear_model import LogisticRegression

        fitted = {}
        for exit_id, logits in zip(exit_ids, exit_logits, strict=True):
            x = _features(logits)
            mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
            right = logits.argmax(axis=-1) == labels
            if right.all() or not right.any():  # one class only: a constant confidence
                weights, bias = np.zeros(x.shape[1]), (20.0 if right.all() else -20.0)
            else:
                model = LogisticRegression(C=1.0, max_iter=1000).fit((x - mean) / scale, right)
                weights, bias = model.coef_[0], float(model.intercept_[0])
            fitted[int(exit_id)] = (
                tuple(float(v) for v in mean),
                tuple(float(v) for v in scale),
                tuple(float(v) for v in weights),
                float(bias),
            )
        return cls(fitted)

    def confidence(self, logits: np.ndarray, exit_id: int) -> np.ndarray:
        if exit_id not in self.exits:
            raise ValueError(
                f"the learned exit policy has no model for exit {exit_id} (has {sorted(self.exits)})"
            )
        mean, scale, weights, bias = self.exits[exit_id]
        z = ((_features(logits) - np.asarray(mean)) / np.asarray(scale)) @ np.asarray(weights) + bias
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        return {str(k): [list(m), list(s), list(w), b] for k, (m, s, w, b) in self.exits.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LearnedConfidence:
        return cls({int(k): (tuple(m), tuple(s), tuple(w), float(b)) for k, (m, s, w, b) in data.items()})


@dataclass(frozen=True)
class ExitPolicy:
    """An exit policy (extension point: one entry of `POLICIES`): a confidence in [0, 1] per input from an
    exit's logits. A fixed policy is a function of the logits; a `learned` one needs its fitted model."""

    description: str
    function: Callable[[np.ndarray], np.ndarray] | None = None
    learned: bool = False

    def confidence(
        self, logits: np.ndarray, exit_id: int = 0, model: LearnedConfidence | None = None
    ) -> np.ndarray:
        if self.function is not None:
            return self.function(logits)
        if model is None:
            raise ValueError("a learned exit policy needs its fitted model (LearnedConfidence)")
        return model.confidence(logits, exit_id)


POLICIES: Registry[ExitPolicy] = Registry(
    "exit policy",
    {
        "score_margin": ExitPolicy("top-1 minus top-2 softmax probability", score_margin),
        "max_prob": ExitPolicy("largest softmax probability", max_probability),
        "entropy": ExitPolicy("1 - normalised entropy of the softmax", entropy_confidence),
        "learned": ExitPolicy(
            "probability that the exit is right, from its logits (fitted per network)", learned=True
        ),
    },
)
DEFAULT_POLICY = "score_margin"
LEARNED = "learned"


def confidence(
    logits: np.ndarray, policy: str = DEFAULT_POLICY, exit_id: int = 0, model: LearnedConfidence | None = None
) -> np.ndarray:
    """Per-input confidence of `logits` (N x classes) under `policy` (a key of `POLICIES`)."""
    return POLICIES[policy].confidence(logits, exit_id, model)


def exit_decisions(
    exit_logits: Sequence[np.ndarray],
    thresholds: Sequence[float],
    policy: str = DEFAULT_POLICY,
    exit_ids: Sequence[int] | None = None,
    model: LearnedConfidence | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference early-exit decisions from every exit's logits (earliest first, final last); `exit_ids`:
    the stage index of each exit (for a learned policy's per-exit models; default 0, 1, ...).

    Returns (predictions, exit position taken) per input; an input leaves at the first early exit
    whose confidence is >= its threshold, else at the final exit.
    """
    if len(thresholds) != len(exit_logits) - 1:
        raise ValueError(f"expected {len(exit_logits) - 1} thresholds, got {len(thresholds)}")
    ids = list(exit_ids) if exit_ids is not None else list(range(len(exit_logits)))
    n = int(exit_logits[0].shape[0])
    taken = np.full(n, len(exit_logits) - 1, dtype=np.int64)
    remaining = np.ones(n, dtype=bool)
    for position, threshold in enumerate(thresholds):
        leave = remaining & (confidence(exit_logits[position], policy, ids[position], model) >= threshold)
        taken[leave] = position
        remaining &= ~leave
    stacked = np.stack([lg.argmax(axis=-1) for lg in exit_logits])
    return stacked[taken, np.arange(n)].astype(np.int64), taken


@dataclass(frozen=True)
class ExitStats:
    accuracy: float
    fractions: tuple[float, ...]  # per active exit, earliest first; sums to 1
    exit_accuracies: tuple[float, ...]  # accuracy of each exit's classifier on all inputs
    # Expected calibration error (15 bins, max-probability) of each active exit on this split, after its
    # temperature and before it (raw logits); () in run stores written before temperature scaling.
    calibration_errors: tuple[float, ...] = ()
    calibration_errors_raw: tuple[float, ...] = ()
    temperatures: tuple[float, ...] = ()  # of each active exit (fitted on validation)


@dataclass(frozen=True)
class CachedExits:
    """Per-exit confidence (for each exit policy) and correctness of one trained architecture on one split.

    Index k refers to the architecture's k-th exit (one per stage that can carry an exit, final last).
    """

    confidences: dict[str, np.ndarray]  # policy -> exits x N (from the temperature-scaled logits)
    correct: np.ndarray  # exits x N, bool
    temperatures: np.ndarray | None = None  # per exit; None: 1 (no scaling)
    calibration_errors: np.ndarray | None = None  # per exit, after scaling (`calibration_error`)
    calibration_errors_raw: np.ndarray | None = None  # per exit, of the raw logits

    @classmethod
    def from_logits(
        cls,
        logits: list[np.ndarray],
        labels: np.ndarray,
        learned: LearnedConfidence | None = None,
        exit_ids: Sequence[int] | None = None,
        temperatures: Sequence[float] | None = None,
    ) -> CachedExits:
        """Confidences under every fixed policy, and under the learned one when its model is given
        (`exit_ids`: the stage index of each exit, default 0, 1, ...), each from the exit's logits divided by
        its temperature (`fit_temperature`; None: 1), with each exit's calibration error before and after."""
        ids = list(exit_ids) if exit_ids is not None else list(range(len(logits)))
        temps = np.ones(len(logits)) if temperatures is None else np.asarray(temperatures, dtype=float)
        if len(temps) != len(logits):
            raise ValueError(f"one temperature per exit expected ({len(logits)}), got {len(temps)}")
        scaled = [lg / t for lg, t in zip(logits, temps, strict=True)]
        confidences = {
            name: np.stack([policy.confidence(lg, i, learned) for i, lg in zip(ids, scaled, strict=True)])
            for name, policy in POLICIES.items()
            if not policy.learned or learned is not None
        }
        correct = np.stack([lg.argmax(axis=-1) == labels for lg in logits])
        raw = [calibration_error(max_probability(lg), c) for lg, c in zip(logits, correct, strict=True)]
        after = [calibration_error(max_probability(lg), c) for lg, c in zip(scaled, correct, strict=True)]
        return cls(confidences, correct, temps, np.asarray(after), np.asarray(raw))

    def _per_exit(self, values: np.ndarray | None, active: tuple[int, ...]) -> tuple[float, ...]:
        return () if values is None else tuple(float(values[i]) for i in active)

    def _stats(self, accuracy: float, fractions: np.ndarray, active: tuple[int, ...]) -> ExitStats:
        return ExitStats(
            accuracy=accuracy,
            fractions=tuple(float(f) for f in fractions),
            exit_accuracies=tuple(float(self.correct[i].mean()) for i in active),
            calibration_errors=self._per_exit(self.calibration_errors, active),
            calibration_errors_raw=self._per_exit(self.calibration_errors_raw, active),
            temperatures=self._per_exit(self.temperatures, active),
        )

    def thresholds_for_fractions(
        self, active: tuple[int, ...], fractions: Sequence[float], policy: str = "score_margin"
    ) -> tuple[float, ...]:
        """Thresholds at which each active early exit takes (about) `fractions[k]` of the inputs that reach it
        on this split, earliest first: every threshold lies inside its exit's own confidence distribution, so
        no choice switches an exit off. Ties at the threshold leave together (a little more than asked)."""
        if len(fractions) != len(active) - 1:
            raise ValueError("one fraction per active early exit expected")
        confidence = self.confidences[policy]
        remaining = np.ones(self.num_inputs, dtype=bool)
        thresholds = []
        for exit_index, fraction in zip(active[:-1], fractions, strict=True):
            reaching = confidence[exit_index][remaining]
            if reaching.size == 0:
                thresholds.append(1.0)
                continue
            # the confidence of the input ranked `fraction` from the top: at least one input leaves
            rank = min(reaching.size - 1, max(0, math.ceil(fraction * reaching.size) - 1))
            threshold = float(np.sort(reaching)[::-1][rank])
            thresholds.append(threshold)
            remaining &= ~(confidence[exit_index] >= threshold)
        return tuple(thresholds)

    @property
    def num_inputs(self) -> int:
        return int(self.correct.shape[1])

    def simulate(
        self, active: tuple[int, ...], thresholds: tuple[float, ...], policy: str = "score_margin"
    ) -> ExitStats:
        """Early-exit inference over the exits `active` (architecture indices, final last).

        An input leaves at the first active early exit whose confidence is >= its threshold, else at the final one.
        """
        taken, correct = self.outcomes(active, thresholds, policy)
        fractions = np.bincount(taken, minlength=len(active)) / self.num_inputs
        return self._stats(float(correct.mean()), fractions, active)

    def oracle(
        self, active: tuple[int, ...], exit_costs: Sequence[float], accuracy: float | None = None
    ) -> ExitStats:
        """The cheapest assignment of inputs to these exits that reaches `accuracy` (default: the most any
        assignment reaches), `exit_costs[k]` being the cost of taking exit `active[k]` (non-decreasing, as
        each exit's cost includes everything before it): a bound no exit policy can beat at that accuracy.

        Exact: every input starts at the first exit; an input wrong there gains a correct answer only by
        moving, at least as far as its earliest correct exit, so the inputs whose move costs least move
        first, until enough are right. Inputs no exit gets right stay at the first exit."""
        correct = self.correct[np.asarray(active)]
        n = self.num_inputs
        costs = np.asarray(exit_costs, dtype=float)
        if len(costs) != len(active):
            raise ValueError("one cost per active exit expected")
        taken = np.zeros(n, dtype=int)
        right = correct[0].copy()
        movable = ~right & correct.any(axis=0)
        earliest = correct.argmax(axis=0)
        wanted = n if accuracy is None else min(n, math.ceil(accuracy * n - 1e-9))
        needed = max(0, wanted - int(right.sum()))
        candidates = np.flatnonzero(movable)
        extra = costs[earliest[candidates]] - costs[0]
        moved = candidates[np.argsort(extra, kind="stable")[:needed]]
        taken[moved] = earliest[moved]
        right[moved] = True
        fractions = np.bincount(taken, minlength=len(active)) / n
        return self._stats(float(right.mean()), fractions, active)

    def outcomes(
        self, active: tuple[int, ...], thresholds: tuple[float, ...], policy: str = "score_margin"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per input: the position in `active` of the exit it leaves at, and whether its prediction is right."""
        margins = self.confidences[policy]
        if len(thresholds) != len(active) - 1:
            raise ValueError("one threshold per active early exit expected")
        n = self.num_inputs
        taken = np.full(n, len(active) - 1)
        remaining = np.ones(n, dtype=bool)
        for position, (exit_index, threshold) in enumerate(zip(active[:-1], thresholds, strict=True)):
            leave = remaining & (margins[exit_index] >= threshold)
            taken[leave] = position
            remaining &= ~leave
        return taken, self.correct[np.asarray(active)[taken], np.arange(n)]


DROP_REFERENCES = ("final", "best")
DEFAULT_DROP_REFERENCE = "final"
