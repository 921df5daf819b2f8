"""Early-exit inference in onnxruntime that really stops at the exit an input takes.

`export_segments` cuts a trained `EarlyExitNet` at its active exits and writes one QCDQ ONNX per
backbone segment and one per exit head, plus `manifest.json`:

* segment k runs the stages after the previous active exit up to and including stage k (segment 0
  also runs `input_quant`); its output is the dequantized float activation after stage k, exactly the
  tensor that flows between those stages in the PyTorch model;
* head k takes segment k's output and returns that exit's logits.

`EarlyExitRuntime` runs a batch the way a device would: every input goes through segment 0 and head 0;
the inputs whose confidence reaches the exit's threshold stop there, and only the others continue into
the next segment, so the batch shrinks at every exit. Confidence policies (each compared with
`>= threshold`): `score_margin` (top-1 minus top-2 softmax probability, as in `codesign.exits`),
`max_prob` (largest softmax probability) and `entropy` (1 - entropy / log(number of classes)).

`add_infer_command` registers `codesign infer MODEL_DIR`, which runs a dataset split through the
runtime and compares it with the same segmented network where every input goes to the final exit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import CodesignError, input_error
from codesign.exits import CONFIDENCE

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "codesign-early-exit-segments"
MANIFEST_VERSION = 1
INPUT_NAME = "input"
FEATURES_NAME = "features"
LOGITS_NAME = "logits"
DEFAULT_POLICY = "score_margin"


# --------------------------------------------------------------------------- confidence policies


POLICIES: dict[str, Callable[[np.ndarray], np.ndarray]] = CONFIDENCE  # the search's own definitions


def confidence(logits: np.ndarray, policy: str = DEFAULT_POLICY) -> np.ndarray:
    """Per-input confidence of `logits` (N x classes) under `policy` (see `POLICIES`)."""
    if policy not in POLICIES:
        raise ValueError(f"policy: expected one of {sorted(POLICIES)}, got {policy!r}")
    return POLICIES[policy](logits)


def exit_decisions(
    exit_logits: Sequence[np.ndarray], thresholds: Sequence[float], policy: str = DEFAULT_POLICY
) -> tuple[np.ndarray, np.ndarray]:
    """Reference early-exit decisions from every exit's logits (earliest first, final last).

    Returns (predictions, exit position taken) per input; an input leaves at the first early exit
    whose confidence is >= its threshold, else at the final exit.
    """
    if len(thresholds) != len(exit_logits) - 1:
        raise ValueError(f"expected {len(exit_logits) - 1} thresholds, got {len(thresholds)}")
    n = int(exit_logits[0].shape[0])
    taken = np.full(n, len(exit_logits) - 1, dtype=np.int64)
    remaining = np.ones(n, dtype=bool)
    for position, threshold in enumerate(thresholds):
        leave = remaining & (confidence(exit_logits[position], policy) >= threshold)
        taken[leave] = position
        remaining &= ~leave
    stacked = np.stack([lg.argmax(axis=-1) for lg in exit_logits])
    return stacked[taken, np.arange(n)].astype(np.int64), taken


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class SegmentedModel:
    """A segmented export on disk: what `manifest.json` says, with paths resolved."""

    folder: Path
    segment_files: tuple[str, ...]  # one per active exit, earliest first
    head_files: tuple[str, ...]  # one per active exit, earliest first
    segment_stages: tuple[tuple[int, ...], ...]  # backbone stages run by each segment
    exit_stages: tuple[int, ...]  # stage after which each exit sits; the last is the final classifier
    thresholds: tuple[float, ...]  # one per early exit
    policy: str
    input_shape: tuple[int, ...]  # C, H, W (batch excluded)
    num_classes: int
    spec_key: str
    spec: dict[str, Any] | None = None

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST_NAME

    @property
    def num_exits(self) -> int:
        return len(self.exit_stages)

    def segment_paths(self) -> list[Path]:
        return [self.folder / name for name in self.segment_files]

    def head_paths(self) -> list[Path]:
        return [self.folder / name for name in self.head_files]

    def to_manifest(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "spec_key": self.spec_key,
            "input_name": INPUT_NAME,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "exit_stages": list(self.exit_stages),
            "thresholds": list(self.thresholds),
            "policy": self.policy,
            "segments": [
                {"file": f, "stages": list(s), "input": INPUT_NAME, "output": FEATURES_NAME}
                for f, s in zip(self.segment_files, self.segment_stages, strict=True)
            ],
            "heads": [
                {"file": f, "stage": s, "input": FEATURES_NAME, "output": LOGITS_NAME}
                for f, s in zip(self.head_files, self.exit_stages, strict=True)
            ],
            "spec": self.spec,
        }

    @classmethod
    def load(cls, folder: str | Path) -> SegmentedModel:
        """Read and validate `folder/manifest.json`; every problem is a one-line `CodesignError`."""
        folder = Path(folder)
        path = folder / MANIFEST_NAME
        expected_folder = "a segmented early-exit model folder written by codesign.deploy.runtime.export_segments"
        if not folder.is_dir():
            raise input_error(folder, "folder", expected_folder, "no such folder")
        if not path.is_file():
            raise input_error(
                folder, MANIFEST_NAME, expected_folder + " (with manifest.json)", "no manifest.json"
            )
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise input_error(path, "content", "a JSON object", f"unreadable ({detail})") from None
        if not isinstance(data, dict):
            raise input_error(path, "content", "a JSON object", type(data).__name__)
        if data.get("format") != MANIFEST_FORMAT:
            raise input_error(path, "format", repr(MANIFEST_FORMAT), data.get("format"))
        if data.get("version") != MANIFEST_VERSION:
            raise input_error(path, "version", str(MANIFEST_VERSION), data.get("version"))

        def int_list(name: str, min_len: int = 0) -> list[int]:
            value = data.get(name)
            if (
                not isinstance(value, list)
                or len(value) < min_len
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
            ):
                raise input_error(path, name, f"a list of at least {min_len} non-negative integers", value)
            return value

        exit_stages = int_list("exit_stages", 1)
        if exit_stages != sorted(set(exit_stages)):
            raise input_error(path, "exit_stages", "strictly increasing stage indices", exit_stages)
        input_shape = int_list("input_shape", 1)
        if not all(v > 0 for v in input_shape):
            raise input_error(path, "input_shape", "positive sizes (channels, height, width)", input_shape)
        thresholds = data.get("thresholds")
        if (
            not isinstance(thresholds, list)
            or len(thresholds) != len(exit_stages) - 1
            or not all(isinstance(t, int | float) and not isinstance(t, bool) for t in thresholds)
        ):
            raise input_error(
                path, "thresholds", f"{len(exit_stages) - 1} numbers (one per early exit)", thresholds
            )
        policy = data.get("policy")
        if policy not in POLICIES:
            raise input_error(path, "policy", f"one of {sorted(POLICIES)}", policy)
        num_classes = data.get("num_classes")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise input_error(path, "num_classes", "a positive integer", num_classes)
        spec_key = data.get("spec_key")
        if not isinstance(spec_key, str):
            raise input_error(path, "spec_key", "a string", spec_key)
        spec = data.get("spec")
        if spec is not None and not isinstance(spec, dict):
            raise input_error(path, "spec", "an object or null", spec)

        def entries(name: str) -> list[dict[str, Any]]:
            value = data.get(name)
            if not isinstance(value, list) or len(value) != len(exit_stages):
                raise input_error(path, name, f"a list of {len(exit_stages)} entries (one per exit)", value)
            for index, entry in enumerate(value):
                file = entry.get("file") if isinstance(entry, dict) else None
                if not isinstance(file, str) or not file or Path(file).name != file:
                    raise input_error(path, f"{name}[{index}].file", "a file name inside the folder", file)
                if not (folder / file).is_file():
                    raise input_error(
                        path, f"{name}[{index}].file", "an existing ONNX file in the folder", file
                    )
            return value

        segments = entries("segments")
        heads = entries("heads")
        segment_stages = []
        for index, entry in enumerate(segments):
            stages = entry.get("stages")
            if not isinstance(stages, list) or not all(isinstance(s, int) for s in stages) or not stages:
                raise input_error(
                    path, f"segments[{index}].stages", "a non-empty list of stage indices", stages
                )
            if stages[-1] != exit_stages[index]:
                raise input_error(
                    path, f"segments[{index}].stages", f"to end at exit stage {exit_stages[index]}", stages
                )
            segment_stages.append(tuple(stages))
        return cls(
            folder=folder,
            segment_files=tuple(e["file"] for e in segments),
            head_files=tuple(e["file"] for e in heads),
            segment_stages=tuple(segment_stages),
            exit_stages=tuple(exit_stages),
            thresholds=tuple(float(t) for t in thresholds),
            policy=policy,
            input_shape=tuple(input_shape),
            num_classes=num_classes,
            spec_key=spec_key,
            spec=spec,
        )


# --------------------------------------------------------------------------- export


def _segment_module(model: Any, stage_indices: Sequence[int], with_input_quant: bool):
    """Backbone stages `stage_indices` (and `input_quant` first if asked) as one module.

    Sub-module names mirror the full model (`input_quant`, `stages.<i>`), so ONNX node names keep the
    `/stages.<i>/` prefixes that `codesign.cost.graph` reads.
    """
    from torch import nn

    class Segment(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input_quant = model.input_quant if with_input_quant else None
            self.stages = nn.ModuleDict({str(i): model.stages[i] for i in stage_indices})

        def forward(self, x):
            if self.input_quant is not None:
                x = _dequantized(self.input_quant(x))
            for stage in self.stages.values():
                x = _dequantized(stage(x))
            return x

    return Segment()


def _head_module(model: Any, stage_index: int):
    from torch import nn

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = nn.ModuleDict({str(stage_index): model.heads[str(stage_index)]})

        def forward(self, x):
            return _dequantized(self.heads[str(stage_index)](x))

    return Head()


def _dequantized(x):
    """The float value of a Brevitas QuantTensor (what the next float op would see), or `x` itself."""
    value = getattr(x, "value", None)
    return value if value is not None and hasattr(x, "scale") else x


def _export_module(module: Any, example: Any, path: Path, input_name: str, output_name: str) -> None:
    """QCDQ ONNX of `module` (opset 13, TorchScript exporter, dynamic batch), checked, at `path`."""
    import onnx
    from brevitas.export import export_onnx_qcdq

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx_qcdq(
                module,
                args=example,
                export_path=str(path),
                dynamo=False,
                opset_version=13,
                input_names=[input_name],
                output_names=[output_name],
                dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            )
    except Exception as exc:  # the exporter's errors span many lines; keep the first, chain the rest
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise CodesignError(
            f"{path.name}: ONNX export: expected a module the QCDQ exporter supports, got {first[:200]}"
        ) from exc
    proto = onnx.load(str(path))
    initializers = {init.name for init in proto.graph.initializer}
    kept = [inp for inp in proto.graph.input if inp.name not in initializers]
    del proto.graph.input[:]
    proto.graph.input.extend(kept)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _model_policy(model: Any) -> str:
    for owner in (model.spec, model):
        for name in ("exit_policy", "policy"):
            value = getattr(owner, name, None)
            if isinstance(value, str):
                return value
    return DEFAULT_POLICY


def export_segments(
    model: Any,
    folder: str | Path,
    *,
    thresholds: Sequence[float] | None = None,
    policy: str | None = None,
) -> SegmentedModel:
    """Write `model` cut at its active exits to `folder` (segment ONNX files, head ONNX files, manifest).

    `thresholds` default to `model.spec.active_thresholds`; `policy` to the spec's/model's `exit_policy`
    or `policy` string if it has one, else score margin. The folder is written under a temporary name
    beside it and renamed into place; an existing segmented-model folder there is replaced, any other
    non-empty folder is refused.
    """
    import torch

    spec = model.spec
    folder = Path(folder)
    exit_stages = tuple(int(s) for s in spec.active_exit_stages)
    thresholds = tuple(float(t) for t in (spec.active_thresholds if thresholds is None else thresholds))
    policy = _model_policy(model) if policy is None else policy
    if policy not in POLICIES:
        raise CodesignError(f"policy: expected one of {sorted(POLICIES)}, got {policy!r}")
    if len(thresholds) != len(exit_stages) - 1:
        raise CodesignError(
            f"thresholds: expected {len(exit_stages) - 1} values (one per early exit), got {len(thresholds)}"
        )
    missing = [s for s in exit_stages if str(s) not in model.heads]
    if missing:
        raise CodesignError(
            f"model.heads: expected a head after stages {list(exit_stages)}, missing {missing}"
        )
    if folder.exists() and not folder.is_dir():
        raise input_error(folder, "folder", "a folder (or a new path) for the segmented model", "a file")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MANIFEST_NAME).is_file():
        raise input_error(
            folder,
            "folder",
            "an empty folder or a segmented model folder to replace",
            "another non-empty folder",
        )

    input_shape = (int(spec.in_channels), int(spec.resolution), int(spec.resolution))
    segment_stages: list[tuple[int, ...]] = []
    start = 0
    for stage in exit_stages:
        segment_stages.append(tuple(range(start, stage + 1)))
        start = stage + 1

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    was_training = model.training
    model.eval()
    try:
        segment_files, head_files = [], []
        x = torch.zeros(2, *input_shape)
        with torch.no_grad():
            for position, (stages, exit_stage) in enumerate(zip(segment_stages, exit_stages, strict=True)):
                segment = _segment_module(model, stages, with_input_quant=position == 0).eval()
                name = f"segment{position}_stages{stages[0]}-{stages[-1]}.onnx"
                _export_module(segment, x, tmp / name, INPUT_NAME, FEATURES_NAME)
                segment_files.append(name)
                x = segment(x)
                head = _head_module(model, exit_stage).eval()
                head_name = f"head{position}_stage{exit_stage}.onnx"
                _export_module(head, x, tmp / head_name, FEATURES_NAME, LOGITS_NAME)
                head_files.append(head_name)
        segmented = SegmentedModel(
            folder=folder,
            segment_files=tuple(segment_files),
            head_files=tuple(head_files),
            segment_stages=tuple(segment_stages),
            exit_stages=exit_stages,
            thresholds=thresholds,
            policy=policy,
            input_shape=input_shape,
            num_classes=int(spec.num_classes),
            spec_key=spec.key(),
            spec=spec.to_dict() if hasattr(spec, "to_dict") else None,
        )
        (tmp / MANIFEST_NAME).write_text(json.dumps(segmented.to_manifest(), indent=2) + "\n")
        _replace_folder(tmp, folder)
    finally:
        model.train(was_training)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return segmented


def _replace_folder(new: Path, target: Path) -> None:
    """Move `new` to `target`; an existing `target` is moved aside first and removed afterwards."""
    if not target.exists():
        os.replace(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(old)
    os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- runtime


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


def runtime_session(path: str | Path, threads: int | None = None):
    """An onnxruntime session like `codesign.deploy.qcdq.onnxruntime_session` (graph optimisations off, so
    QCDQ is not fused into integer kernels and results match PyTorch), with intra-op spinning off.

    A segmented model has one session per segment and head; with spinning on, the idle thread pool of
    the session that just ran keeps busy-waiting while the next one works, which on a small CPU cost
    several times the inference time. `threads` sets intra-op threads (None: onnxruntime's default).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        if threads < 1:
            raise CodesignError(f"threads: expected a positive integer, got {threads}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class EarlyExitRuntime:
    """onnxruntime sessions of a segmented model (see `runtime_session`) and early-exit inference."""

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
            raise CodesignError(f"policy: expected one of {sorted(POLICIES)}, got {self.policy!r}")
        self._confidence = POLICIES[self.policy]
        self.threads = threads
        self.segments = [runtime_session(p, threads) for p in self.model.segment_paths()]
        self.heads = [runtime_session(p, threads) for p in self.model.head_paths()]
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
            leave = self._confidence(logits) >= self.thresholds[position]
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


# --------------------------------------------------------------------------- CLI


def parse_thresholds(text: str, source: str = "--thresholds") -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise CodesignError(
            f"{source} {text!r}: value: expected comma-separated numbers, e.g. 0.2,0.5"
        ) from None
    if not all(math.isfinite(v) for v in values):
        raise CodesignError(f"{source} {text!r}: value: expected finite numbers, e.g. 0.2,0.5")
    return values


def format_comparison(model: SegmentedModel, early: SplitResult, static: SplitResult, label: str) -> str:
    exits = ", ".join(str(s) for s in model.exit_stages)
    lines = [
        f"model {model.folder} (spec {model.spec_key}): exits after stages {exits}",
        f"data  {label}: {early.num_images} images, batch size {early.batch_size}",
        "",
        f"{'':12} {'accuracy':>9} {'images/s':>11}  exit fractions (earliest first); images/s: median of passes",
        f"{'early exit':12} {early.accuracy:>9.4f} {early.images_per_second:>11,.0f}  "
        + " ".join(f"{f:.3f}" for f in early.exit_fractions),
        f"{'static':12} {static.accuracy:>9.4f} {static.images_per_second:>11,.0f}  "
        + " ".join(f"{f:.3f}" for f in static.exit_fractions),
        "",
        "inputs entering each segment (early exit): " + " ".join(str(c) for c in early.segment_inputs),
        f"speed-up {early.images_per_second / static.images_per_second:.2f}x, accuracy change "
        f"{100 * (early.accuracy - static.accuracy):+.2f} points",
    ]
    return "\n".join(lines)


def _median_run(results: list[SplitResult]) -> SplitResult:
    return sorted(results, key=lambda r: r.images_per_second)[len(results) // 2]


def _infer(args: argparse.Namespace) -> int:
    from codesign.data.splits import load_dataset

    thresholds = parse_thresholds(args.thresholds) if args.thresholds else None
    if args.batch_size < 1:
        raise CodesignError(f"--batch-size {args.batch_size}: value: expected a positive integer")
    if args.repeats < 1:
        raise CodesignError(f"--repeats {args.repeats}: value: expected a positive integer")
    if args.threads is not None and args.threads < 1:
        raise CodesignError(f"--threads {args.threads}: value: expected a positive integer")
    runtime = EarlyExitRuntime(
        args.model_dir, thresholds=thresholds, policy=args.policy, threads=args.threads
    )
    dataset = load_dataset(args.dataset, seed=0, data_dir=Path(args.data_dir) if args.data_dir else None)
    model = runtime.model
    if dataset.num_classes != model.num_classes:
        raise input_error(
            model.manifest_path,
            "num_classes",
            f"{dataset.num_classes} to match dataset {args.dataset}",
            model.num_classes,
        )
    shape = tuple(int(s) for s in dataset.train.images.shape[1:])
    if shape != model.input_shape:
        raise input_error(
            model.manifest_path,
            "input_shape",
            f"{list(shape)} to match dataset {args.dataset}",
            list(model.input_shape),
        )
    split = getattr(dataset, args.split)
    runtime.run_split(split, args.batch_size)  # warm-up of every session
    early_runs, static_runs = [], []
    for _ in range(args.repeats):  # interleaved, so both modes see the same machine load
        early_runs.append(runtime.run_split(split, args.batch_size, warmup=False))
        static_runs.append(runtime.run_split(split, args.batch_size, static=True, warmup=False))
    early, static = _median_run(early_runs), _median_run(static_runs)
    threads = "default" if args.threads is None else args.threads
    print(
        f"policy {runtime.policy}, thresholds {' '.join(f'{t:g}' for t in runtime.thresholds)}, "
        f"onnxruntime threads {threads} (graph optimisations off)"
    )
    print(format_comparison(model, early, static, f"{args.dataset} {args.split}"))
    return 0


def add_infer_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register `infer` on an argparse sub-parser group; the handler is stored as `handler`."""
    inf = subparsers.add_parser(
        "infer",
        help="run a dataset split through a segmented early-exit ONNX model in onnxruntime",
    )
    inf.add_argument(
        "model_dir", metavar="MODEL_DIR", help="folder written by codesign.deploy.runtime.export_segments"
    )
    inf.add_argument("--dataset", default="digits", help="dataset name (default: digits)")
    inf.add_argument("--split", default="test", choices=["test", "val"], help="split to run (default: test)")
    inf.add_argument(
        "--data-dir", help="folder with the dataset files (Fashion-MNIST IDX, CIFAR batches, SVHN .mat)"
    )
    inf.add_argument("--batch-size", type=int, default=256, help="inputs per batch (default: 256)")
    inf.add_argument(
        "--thresholds", help="one threshold per early exit, e.g. 0.2,0.5 (default: those in the manifest)"
    )
    inf.add_argument(
        "--policy", choices=sorted(POLICIES), help="exit confidence policy (default: the manifest's)"
    )
    inf.add_argument(
        "--threads", type=int, help="onnxruntime intra-op threads per session (default: onnxruntime's choice)"
    )
    inf.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed passes of each mode, interleaved; median shown (default 3)",
    )
    inf.set_defaults(handler=_infer)
    return inf
