"""Exit statistics from cached logits: accuracy and exit fractions for any threshold vector.

A network's per-exit logits are computed once per split; every threshold setting and every subset
of active exits is then simulated without running the network again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def score_margin(logits: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 softmax probability, per input (EDANAS/NACHOS confidence)."""
    top2 = np.partition(softmax(logits), -2, axis=-1)[..., -2:]
    return top2[..., 1] - top2[..., 0]


@dataclass(frozen=True)
class ExitStats:
    accuracy: float
    fractions: tuple[float, ...]  # per active exit, earliest first; sums to 1
    exit_accuracies: tuple[float, ...]  # accuracy of each exit's classifier on all inputs


@dataclass(frozen=True)
class CachedExits:
    """Per-exit confidence and correctness of one trained architecture on one split.

    Index k refers to the architecture's k-th exit (one per stage that can carry an exit, final last).
    """

    margins: np.ndarray  # exits x N
    correct: np.ndarray  # exits x N, bool

    @classmethod
    def from_logits(cls, logits: list[np.ndarray], labels: np.ndarray) -> CachedExits:
        margins = np.stack([score_margin(lg) for lg in logits])
        correct = np.stack([lg.argmax(axis=-1) == labels for lg in logits])
        return cls(margins=margins, correct=correct)

    @property
    def num_inputs(self) -> int:
        return int(self.margins.shape[1])

    def simulate(self, active: tuple[int, ...], thresholds: tuple[float, ...]) -> ExitStats:
        """Early-exit inference over the exits `active` (architecture indices, final last).

        An input leaves at the first active early exit whose margin is >= its threshold, else at the final one.
        """
        if len(thresholds) != len(active) - 1:
            raise ValueError("one threshold per active early exit expected")
        n = self.num_inputs
        taken = np.full(n, len(active) - 1)
        remaining = np.ones(n, dtype=bool)
        for position, (exit_index, threshold) in enumerate(zip(active[:-1], thresholds, strict=True)):
            leave = remaining & (self.margins[exit_index] >= threshold)
            taken[leave] = position
            remaining &= ~leave
        correct = self.correct[np.asarray(active)[taken], np.arange(n)]
        fractions = np.bincount(taken, minlength=len(active)) / n
        return ExitStats(
            accuracy=float(correct.mean()),
            fractions=tuple(float(f) for f in fractions),
            exit_accuracies=tuple(float(self.correct[i].mean()) for i in active),
        )
