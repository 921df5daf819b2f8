"""Step: exit statistics from cached logits. Per exit a temperature fitted on validation, the learned
policy's model (on training logits), confidences and correctness per split (`exits.CachedExits`); then per
candidate the thresholds (from its exit fractions, tuned, or given), exit fractions and accuracy, the exits
that take no input switched off, and the oracle. Each function takes what it needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from codesign.cost.exits import expected_cost
from codesign.cost.records import ExitCost
from codesign.data.splits import Split
from codesign.evaluation.settings import EvaluationSettings
from codesign.exits import CachedExits, ExitStats, LearnedConfidence, fit_temperature
from codesign.network.training import exit_logits
from codesign.spec import CandidateSpec
from codesign.thresholds import tune_thresholds


def fit_temperatures(
    logits: Sequence[np.ndarray], labels: np.ndarray, enabled: bool = True
) -> tuple[float, ...]:
    """One temperature per exit, fitted on these (validation) logits; 1 each when not `enabled`."""
    if not enabled:
        return tuple(1.0 for _ in logits)
    return tuple(fit_temperature(lg, labels) for lg in logits)


def learned_policy(
    model: torch.nn.Module,
    train: Split,
    images: int,
    temperatures: Sequence[float],
    exit_ids: Sequence[int] | None = None,
) -> LearnedConfidence:
    """The learned exit policy's model for this network, fitted on the first `images` training images'
    temperature-scaled logits (never on the split thresholds are chosen on)."""
    subset = Split(train.images[:images], train.labels[:images])
    logits = exit_logits(model, subset)
    ids = exit_ids if exit_ids is not None else tuple(range(len(logits)))
    scaled = [lg / t for lg, t in zip(logits, temperatures, strict=True)]
    return LearnedConfidence.fit(scaled, subset.labels.cpu().numpy(), ids)


def cached_exits(
    model: torch.nn.Module,
    data: Split,
    temperatures: Sequence[float] | None,
    learned: LearnedConfidence | None = None,
    exit_ids: Sequence[int] | None = None,
) -> CachedExits:
    """Per-exit confidences (temperature-scaled) and correctness on one split (model and split on one device)."""
    logits = exit_logits(model, data)
    return CachedExits.from_logits(logits, data.labels.cpu().numpy(), learned, exit_ids, temperatures)


def calibrated_exits(
    model: torch.nn.Module,
    val: Split,
    train: Split | None,
    settings: EvaluationSettings,
    exit_ids: Sequence[int] | None = None,
) -> tuple[CachedExits, tuple[float, ...], LearnedConfidence | None]:
    """The network's validation statistics with each exit's temperature fitted on them, and the learned
    policy's model (`train` given: the search uses that policy). Returns (validation exits, temperatures,
    learned model)."""
    logits = exit_logits(model, val)
    labels = val.labels.cpu().numpy()
    temperatures = fit_temperatures(logits, labels, settings.temperature_scaling)
    learned = (
        learned_policy(model, train, settings.learned_policy_images, temperatures, exit_ids)
        if train is not None
        else None
    )
    return CachedExits.from_logits(logits, labels, learned, exit_ids, temperatures), temperatures, learned


def with_thresholds(spec: CandidateSpec, active_thresholds: tuple[float, ...]) -> CandidateSpec:
    """The spec with new thresholds for its active early exits."""
    values = iter(active_thresholds)
    thresholds = tuple(next(values) if on else t for on, t in zip(spec.exits, spec.thresholds, strict=True))
    return replace(spec, thresholds=thresholds)


def exit_statistics(
    spec: CandidateSpec,
    exits: list[ExitCost] | tuple[ExitCost, ...],
    val: CachedExits,
    test: CachedExits | None,
    positions: tuple[int, ...],
    settings: EvaluationSettings,
) -> tuple[CandidateSpec, ExitStats, ExitStats | None]:
    """Thresholds, then the exit statistics on both splits; the spec returned carries the thresholds used.
    Thresholds are tuned on validation for the lowest expected energy (when `settings` tune them), placed
    where each exit takes its searched fraction of the validation inputs reaching it (`spec.exit_fractions`),
    or taken as the spec gives them.

    `positions`: the candidate's active exits as indices into the cached exits (architecture exits during
    the search; 0..n-1 for a candidate model that has only its active heads)."""
    if settings.threshold_tuning is not None:
        drop = spec.accuracy_drop if spec.accuracy_drop is not None else settings.threshold_tuning
        tuned, val_stats = tune_thresholds(
            val,
            positions,
            spec.policy,
            [e.energy_pj for e in exits],
            drop,
            confidence=settings.tuning_confidence,
            reference=settings.drop_reference,
        )
        spec = with_thresholds(spec, tuned)
    else:
        if spec.exit_fractions:
            placed = val.thresholds_for_fractions(positions, spec.active_exit_fractions, spec.policy)
            spec = with_thresholds(spec, placed)
        val_stats = val.simulate(positions, spec.active_thresholds, spec.policy)
    test_stats = test.simulate(positions, spec.active_thresholds, spec.policy) if test is not None else None
    return spec, val_stats, test_stats


def taken_exits(spec: CandidateSpec, val: ExitStats) -> tuple[int, ...]:
    """The candidate's active exit stages that take validation inputs (the final exit always)."""
    stages = spec.active_exit_stages
    return (*(s for s, f in zip(stages[:-1], val.fractions[:-1], strict=True) if f > 0), stages[-1])


def keep_exits(spec: CandidateSpec, stages: tuple[int, ...]) -> CandidateSpec:
    """The network with only the exits after `stages` (final included): a head no input takes is not
    deployed, so it is neither computed nor paid for; with none left, the static network itself."""
    exits = tuple(on and i in stages for i, on in enumerate(spec.exits))
    thresholds = tuple(t if on else 1.0 for t, on in zip(spec.thresholds, exits, strict=True))
    fractions = (
        tuple(f if on else 1.0 for f, on in zip(spec.exit_fractions, exits, strict=True))
        if spec.exit_fractions and any(exits)
        else ()
    )
    return replace(spec, exits=exits, thresholds=thresholds, exit_fractions=fractions)


def oracle_fields(
    cached: CachedExits | None,
    positions: tuple[int, ...],
    exits: list[ExitCost] | tuple[ExitCost, ...],
    achieved: ExitStats | None,
) -> dict[str, Any]:
    """The oracle's test figures, as CandidateResult fields: the cheapest assignment of the test inputs to
    the network's exits that reaches the accuracy its policy achieved (`CachedExits.oracle`)."""
    if cached is None or achieved is None:
        return {}
    oracle = cached.oracle(positions, [e.energy_pj for e in exits], achieved.accuracy)
    return {"oracle_test": oracle, "expected_oracle_test": expected_cost(list(exits), oracle.fractions)}
