"""Measuring an early-exit runtime: how often the deployment mode decides as the reference mode (= PyTorch)
does, and per-image latency at batch 1, one image at a time as a device classifies."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesign.deploy.runtime import EarlyExitRuntime, as_numpy


@dataclass(frozen=True)
class ModeAgreement:
    """The deployment mode against the reference mode (which equals PyTorch) on the same images."""

    same_exit_and_class: float  # share of inputs that leave at the same exit with the same prediction
    reference_accuracy: float
    deploy_accuracy: float
    num_images: int


def compare_modes(reference: EarlyExitRuntime, deployed: EarlyExitRuntime, split: Any) -> ModeAgreement:
    """How often the deployment mode decides as the reference mode (= PyTorch) does, and both accuracies."""
    images = as_numpy(split.images).astype(np.float32, copy=False)
    labels = as_numpy(split.labels).astype(np.int64, copy=False)
    ref, dep = reference.run(images), deployed.run(images)
    same = (ref.predictions == dep.predictions) & (ref.exits == dep.exits)
    return ModeAgreement(
        same_exit_and_class=float(same.mean()),
        reference_accuracy=float((ref.predictions == labels).mean()),
        deploy_accuracy=float((dep.predictions == labels).mean()),
        num_images=int(labels.size),
    )


@dataclass(frozen=True)
class Latency:
    """Per-image latency at batch 1 (seconds), one image at a time through the runtime. With early exit the
    distribution has one mode per exit: the mean is the expected latency (what costs predict), the median
    that of the exit most inputs take."""

    median_s: float
    p90_s: float
    images: int
    mean_s: float


def batch1_latency(runtime: EarlyExitRuntime, images: np.ndarray, static: bool = False) -> Latency:
    """Each image alone, as a device classifies it: median and 90th percentile of the per-image wall time."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    times = np.empty(len(images))
    clock = time.perf_counter
    for index in range(len(images)):
        start = clock()
        runtime.run(images[index : index + 1], static=static)
        times[index] = clock() - start
    return Latency(float(np.median(times)), float(np.percentile(times, 90)), len(images), float(times.mean()))
