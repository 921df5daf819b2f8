"""Early-exit inference in onnxruntime over a segmented model (`codesign.deploy.segments`).

`EarlyExitRuntime` runs a batch the way a device would: every input goes through segment 0 and head 0;
the inputs whose confidence reaches the exit's threshold stop there, and only the others continue into
the next segment, so the batch shrinks at every exit. Confidence policies are `codesign.exits.POLICIES`
(each compared with `>= threshold`). Two modes:

- `deploy` (the default): built for batch-1 latency. One session per exit position runs the segment, its
  exit head and the exit decision (`codesign.deploy.decisions`), so an input costs one call per exit it
  reaches; onnxruntime's full graph optimisation fuses QCDQ into integer kernels (QLinearConv, QGemm);
  batch-1 inputs and outputs are preallocated and bound once (IO binding); one intra-op thread by default,
  no spinning. Integer kernels round differently from fake-quantized PyTorch, so decisions can differ on
  inputs right at a threshold: `compare_modes` measures how often;
- `reference`: graph optimisations off, confidences computed in numpy from each head's logits: results
  equal PyTorch's (to ~1e-6), for tests and for checking the deployment mode.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from codesign.deploy.segments import SegmentedModel, static_graph
from codesign.deploy.sessions import onnxruntime_session
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


MODES = ("deploy", "reference")


@dataclass(frozen=True)
class DeployOptions:
    """What the deployment mode does on top of the reference mode, each switchable (to measure what each buys):
    segment, head and decision merged into one graph per exit (always), integer kernels from onnxruntime's full
    graph optimisation (`optimized`), batch-1 buffers bound once (`io_binding`)."""

    optimized: bool = True
    io_binding: bool = True


class EarlyExitRuntime:
    """onnxruntime sessions of a segmented model and early-exit inference (see the module docstring)."""

    def __init__(
        self,
        folder: str | Path,
        *,
        thresholds: Sequence[float] | None = None,
        policy: str | None = None,
        threads: int | None = None,
        mode: str = "deploy",
        deploy: DeployOptions | None = None,
    ):
        if mode not in MODES:
            raise CodesignError(f"mode: expected one of {list(MODES)}, got {mode!r}")
        self.mode = mode
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
        self.threads = 1 if threads is None else threads  # small networks at batch 1: one thread is fastest
        self._deployed = (
            _Deployed(
                self.model,
                self.thresholds,
                self.policy,
                self._policy_model,
                self.threads,
                deploy or DeployOptions(),
            )
            if mode == "deploy"
            else None
        )

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

    @cached_property
    def segments(self) -> list[Any]:
        """The reference mode's sessions (built on first use: the deployment mode needs them only for
        `exit_logits`)."""
        return [onnxruntime_session(p, self.threads) for p in self.model.segment_paths()]

    @cached_property
    def heads(self) -> list[Any]:
        return [onnxruntime_session(p, self.threads) for p in self.model.head_paths()]

    @cached_property
    def _segment_io(self) -> list[tuple[str, str]]:
        return [(s.get_inputs()[0].name, s.get_outputs()[0].name) for s in self.segments]

    @cached_property
    def _head_io(self) -> list[tuple[str, str]]:
        return [(h.get_inputs()[0].name, h.get_outputs()[0].name) for h in self.heads]

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
        if self._deployed is not None:
            return self._deployed.run(self._check_images(images), static)
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
            scaled = logits / self.model.temperature(position)
            leave = self._policy.confidence(scaled, stage, self._policy_model) >= self.thresholds[position]
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
        images = as_numpy(split.images).astype(np.float32, copy=False)
        labels = as_numpy(split.labels).astype(np.int64, copy=False)
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


class _Deployed:
    """The deployment mode's sessions: per exit position the segment, its head and its decision in one graph
    (`codesign.deploy.decisions`), plus the whole network without exits for `static` runs; inputs and outputs
    of single images bound once to preallocated buffers."""

    def __init__(
        self,
        model: SegmentedModel,
        thresholds: tuple[float, ...],
        policy: str,
        policy_model: LearnedConfidence | None,
        threads: int,
        options: DeployOptions,
    ) -> None:
        import onnx

        from codesign.deploy.decisions import FEATURES, LEAVE, LOGITS, PREDICTION, deployment_graph
        from codesign.deploy.segments import FEATURES_NAME, INPUT_NAME, LOGITS_NAME

        self.model = model
        last = model.num_exits - 1
        segments = [onnx.load(str(path)) for path in model.segment_paths()]
        heads = [onnx.load(str(path)) for path in model.head_paths()]
        graphs = []
        for position, (segment, head) in enumerate(zip(segments, heads, strict=True)):
            graphs.append(
                deployment_graph(
                    segment,
                    head,
                    input_name=INPUT_NAME,
                    features_name=FEATURES_NAME,
                    logits_name=LOGITS_NAME,
                    threshold=thresholds[position] if position < last else None,
                    policy=policy,
                    classes=model.num_classes,
                    exit_id=model.exit_stages[position],
                    model=policy_model,
                    temperature=model.temperature(position),
                )
            )
        self.options = options
        self.sessions = [onnxruntime_session(graph, threads, options.optimized) for graph in graphs]
        self.static_session = onnxruntime_session(
            static_graph(segments, heads[-1]), threads, options.optimized
        )
        self.outputs = [
            [PREDICTION, FEATURES] + ([LEAVE] if p < last else []) for p in range(model.num_exits)
        ]
        self._names = (INPUT_NAME, FEATURES, LOGITS, PREDICTION, LEAVE)
        self._bind_single_image()

    def _bind_single_image(self) -> None:
        """Preallocated batch-1 buffers: each position reads the previous one's features in place."""
        import onnxruntime as ort

        input_name, features, logits, prediction, leave = self._names
        self.image = np.zeros((1, *self.model.input_shape), dtype=np.float32)
        source = ort.OrtValue.ortvalue_from_numpy(self.image)
        self.bindings, self.predicted, self.leaving, self._keep = [], [], [], []
        for session in self.sessions:
            shapes = {o.name: o.shape for o in session.get_outputs()}
            binding = session.io_binding()
            binding.bind_ortvalue_input(input_name, source)
            buffers = {
                features: np.zeros([1, *shapes[features][1:]], dtype=np.float32),
                logits: np.zeros([1, self.model.num_classes], dtype=np.float32),
                prediction: np.zeros(1, dtype=np.int64),
            }
            if leave in shapes:
                buffers[leave] = np.zeros(1, dtype=bool)
            values = {name: ort.OrtValue.ortvalue_from_numpy(array) for name, array in buffers.items()}
            for name, value in values.items():
                binding.bind_ortvalue_output(name, value)
            self.bindings.append(binding)
            self.predicted.append(buffers[prediction])
            self.leaving.append(buffers.get(leave))
            self._keep.append((buffers, values))  # the buffers must outlive the bindings
            source = values[features]
        static_binding = self.static_session.io_binding()
        static_binding.bind_ortvalue_input(input_name, ort.OrtValue.ortvalue_from_numpy(self.image))
        self.static_prediction = np.zeros(1, dtype=np.int64)
        static_value = ort.OrtValue.ortvalue_from_numpy(self.static_prediction)
        static_binding.bind_ortvalue_output(prediction, static_value)
        self.static_binding = static_binding
        self._keep.append((self.static_prediction, static_value))

    def classify(self, image: np.ndarray) -> tuple[int, int]:
        """(prediction, exit position) of one image: one session call per exit it reaches."""
        np.copyto(self.image[0], image)
        last = len(self.sessions) - 1
        for position in range(last):
            self.sessions[position].run_with_iobinding(self.bindings[position])
            if self.leaving[position][0]:
                return int(self.predicted[position][0]), position
        self.sessions[last].run_with_iobinding(self.bindings[last])
        return int(self.predicted[last][0]), last

    def classify_static(self, image: np.ndarray) -> int:
        np.copyto(self.image[0], image)
        self.static_session.run_with_iobinding(self.static_binding)
        return int(self.static_prediction[0])

    def run(self, images: np.ndarray, static: bool) -> RuntimeResult:
        start = time.perf_counter()
        n, exits_count = images.shape[0], len(self.sessions)
        predictions = np.zeros(n, dtype=np.int64)
        exits = np.full(n, exits_count - 1, dtype=np.int64)
        entered = [0] * exits_count
        single = n == 1 and self.options.io_binding
        if static:
            if single:
                predictions[0] = self.classify_static(images[0])
            else:
                output = self.static_session.run([self._names[3]], {self._names[0]: images})[0]
                predictions[:] = output
            entered[0] = n
        elif single:
            predictions[0], exits[0] = self.classify(images[0])
            for position in range(int(exits[0]) + 1):
                entered[position] = 1
        else:
            index, x = np.arange(n), images
            for position, session in enumerate(self.sessions):
                entered[position] = int(index.size)
                results = dict(
                    zip(
                        self.outputs[position],
                        session.run(self.outputs[position], {self._names[0]: x}),
                        strict=True,
                    )
                )
                if position == exits_count - 1:
                    predictions[index] = results[self._names[3]]
                    break
                leave = results[self._names[4]]
                predictions[index[leave]] = results[self._names[3]][leave]
                exits[index[leave]] = position
                index, x = index[~leave], np.ascontiguousarray(results[self._names[1]][~leave])
                if index.size == 0:
                    break
        zeros = tuple(0.0 for _ in range(exits_count))
        return RuntimeResult(predictions, exits, time.perf_counter() - start, zeros, zeros, tuple(entered))


def as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)
