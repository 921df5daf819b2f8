"""Early-exit inference in onnxruntime over a segmented model (`codesign.deploy.segments`).

`EarlyExitRuntime` runs a batch the way a device would: every input goes through segment 0 and head 0;
the inputs whose confidence reaches the exit's threshold stop there, and only the others continue into
the next segment, so the batch shrinks at every exit. Confidence policies are `codesign.exits.POLICIES`
(each compared with `>= threshold`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codesign.deploy.qcdq import onnxruntime_session
from codesign.deploy.segments import SegmentedModel
from codesign.errors import CodesignError, input_error
from codesign.exits import POLICIES, LearnedConfidence


@dataclass(frozen=True)
class RuntimeResult:
    """One batch through the runtime."""

    predictions: np.ndarray  # int64, N
    exits: np.ndarray  # int64, N: position of the exit taken (0 = earliest active exit, last = final)
    seconds: float  # wall time of the whole batch
    segment_seconds: tuple[float, ...]  # time spent in each segment's session
    head_seconds: tuple[float, ...]  # time spent in each head's session
    segment_inputs: tuple[int, ...]  # inputs that entered each segment (shrinks at every exit)

    @property
    def exit_counts(self) -> np.ndarray:
        return np.bincount(self.exits, minlength=len(self.segment_inputs))


@dataclass(frozen=True)
class SplitResult:
    """A whole split through the runtime, batch by batch."""

    accuracy: float
    exit_fractions: tuple[float, ...]  # per active exit, earliest first; sums to 1
    images_per_second: float
    seconds: float
    num_images: int
    batch_size: int
    segment_inputs: tuple[int, ...]  # total inputs that entered each segment
    predictions: np.ndarray
    exits: np.ndarray


class EarlyExitRuntime:
    """onnxruntime sessions of a segmented model (see `onnxruntime_session`) and early-exit inference."""

    def __init__(
        self,
        folder: str | Path,
        *,
        thresholds: Sequence[float] | None = None,
        policy: str | None = None,
        threads: int | None = None,
    ):
        self.model = SegmentedModel.load(folder)
        self.thresholds = self.model.thresholds if thresholds is None else tuple(float(t) for t in thresholds)
        if len(self.thresholds) != self.model.num_exits - 1:
            raise CodesignError(
                f"thresholds: expected {self.model.num_exits - 1} values (one per early exit of "
                f"{self.model.manifest_path}), got {len(self.thresholds)}"
            )
        self.policy = self.model.policy if policy is None else policy
        if self.policy not in POLICIES:
            raise CodesignError(f"policy: expected one of {list(POLICIES)}, got {self.policy!r}")
        policy_model = self.model.policy_model
        if POLICIES[self.policy].learned and policy_model is None:
            raise input_error(
                self.model.manifest_path,
                "policy_model",
                "the learned policy's fitted model for --policy learned",
            )
        self._policy = POLICIES[self.policy]
        self._policy_model = LearnedConfidence.from_dict(policy_model) if policy_model else None
        self.threads = threads
        self.segments = [onnxruntime_session(p, threads) for p in self.model.segment_paths()]
        self.heads = [onnxruntime_session(p, threads) for p in self.model.head_paths()]
        self._segment_io = [(s.get_inputs()[0].name, s.get_outputs()[0].name) for s in self.segments]
        self._head_io = [(h.get_inputs()[0].name, h.get_outputs()[0].name) for h in self.heads]

    @property
    def num_exits(self) -> int:
        return self.model.num_exits

    def _check_images(self, images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        if (
            images.ndim != 1 + len(self.model.input_shape)
            or tuple(images.shape[1:]) != self.model.input_shape
        ):
            raise input_error(
                self.model.manifest_path,
                "input_shape",
                f"images of shape N x {' x '.join(map(str, self.model.input_shape))}",
                " x ".join(map(str, images.shape)),
            )
        return images

    def _segment(self, position: int, x: np.ndarray) -> np.ndarray:
        name_in, name_out = self._segment_io[position]
        return self.segments[position].run([name_out], {name_in: x})[0]

    def _head(self, position: int, x: np.ndarray) -> np.ndarray:
        name_in, name_out = self._head_io[position]
        return self.heads[position].run([name_out], {name_in: x})[0]

    def run(self, images: np.ndarray, *, static: bool = False) -> RuntimeResult:
        """Classify a batch with early exit; `static=True` sends every input to the final exit.

        After each early exit only the inputs that did not leave there go on to the next segment.
        """
        start = time.perf_counter()
        x = self._check_images(images)
        n = x.shape[0]
        last = self.num_exits - 1
        predictions = np.zeros(n, dtype=np.int64)
        exits = np.full(n, last, dtype=np.int64)
        segment_seconds = [0.0] * self.num_exits
        head_seconds = [0.0] * self.num_exits
        segment_inputs = [0] * self.num_exits
        index = np.arange(n)
        for position in range(self.num_exits):
            if index.size == 0:
                break
            segment_inputs[position] = int(index.size)
            t0 = time.perf_counter()
            x = self._segment(position, x)
            t1 = time.perf_counter()
            segment_seconds[position] += t1 - t0
            if position < last and static:
                continue
            logits = self._head(position, x)
            head_seconds[position] += time.perf_counter() - t1
            if position == last:
                predictions[index] = logits.argmax(axis=-1)
                break
            stage = self.model.exit_stages[position]
            leave = self._policy.confidence(logits, stage, self._policy_model) >= self.thresholds[position]
            if leave.any():
                predictions[index[leave]] = logits[leave].argmax(axis=-1)
                exits[index[leave]] = position
                stay = ~leave
                index = index[stay]
                x = np.ascontiguousarray(x[stay])
        return RuntimeResult(
            predictions=predictions,
            exits=exits,
            seconds=time.perf_counter() - start,
            segment_seconds=tuple(segment_seconds),
            head_seconds=tuple(head_seconds),
            segment_inputs=tuple(segment_inputs),
        )

    def exit_logits(self, images: np.ndarray) -> list[np.ndarray]:
        """Logits of every exit for every input (no early exit), earliest first; for checks."""
        x = self._check_images(images)
        outputs = []
        for position in range(self.num_exits):
            x = self._segment(position, x)
            outputs.append(self._head(position, x))
        return outputs

    def run_split(
        self, split: Any, batch_size: int = 256, *, static: bool = False, warmup: bool = True
    ) -> SplitResult:
        """Run a `codesign.data.splits.Split` (or anything with `images` and `labels`) in batches.

        `warmup` first runs one untimed batch so session start-up is not counted in images/s.
        """
        if batch_size < 1:
            raise CodesignError(f"batch_size: expected a positive integer, got {batch_size}")
        images = _as_numpy(split.images).astype(np.float32, copy=False)
        labels = _as_numpy(split.labels).astype(np.int64, copy=False)
        n = int(labels.shape[0])
        if warmup and n:
            self.run(images[:batch_size], static=static)
        predictions = np.zeros(n, dtype=np.int64)
        exits = np.zeros(n, dtype=np.int64)
        entered = np.zeros(self.num_exits, dtype=np.int64)
        start = time.perf_counter()
        for begin in range(0, n, batch_size):
            result = self.run(images[begin : begin + batch_size], static=static)
            predictions[begin : begin + batch_size] = result.predictions
            exits[begin : begin + batch_size] = result.exits
            entered += result.segment_inputs
        seconds = time.perf_counter() - start
        fractions = np.bincount(exits, minlength=self.num_exits) / max(n, 1)
        return SplitResult(
            accuracy=float((predictions == labels).mean()) if n else float("nan"),
            exit_fractions=tuple(float(f) for f in fractions),
            images_per_second=n / seconds if seconds > 0 else float("inf"),
            seconds=seconds,
            num_images=n,
            batch_size=batch_size,
            segment_inputs=tuple(int(c) for c in entered),
            predictions=predictions,
            exits=exits,
        )


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)
