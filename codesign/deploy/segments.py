"""An early-exit network cut at its exits, for inference that really stops there.

`export_segments` cuts a trained `EarlyExitNet` at its active exits and writes one QCDQ ONNX per
backbone segment and one per exit head, plus `manifest.json` (`SegmentedModel`):

* segment k runs the stages after the previous active exit up to and including stage k (segment 0
  also runs `input_quant`); its output is the dequantized float activation after stage k, exactly the
  tensor that flows between those stages in the PyTorch model;
* head k takes segment k's output and returns that exit's logits.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesign.errors import CodesignError, input_error
from codesign.exits import DEFAULT_POLICY, POLICIES, LearnedConfidence
from codesign.files import replace_folder

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "codesign-early-exit-segments"
MANIFEST_VERSION = 1
INPUT_NAME = "input"
FEATURES_NAME = "features"
LOGITS_NAME = "logits"


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
    policy_model: dict[str, Any] | None = None  # the learned policy's fitted model (`LearnedConfidence`)
    # One per exit: its logits are divided by it before the policy sees them (temperature scaling, fitted on
    # validation); () in manifests written before: 1 each.
    temperatures: tuple[float, ...] = ()

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST_NAME

    @property
    def num_exits(self) -> int:
        return len(self.exit_stages)

    def temperature(self, position: int) -> float:
        """The temperature of the exit at `position` (1 where the manifest has none)."""
        return self.temperatures[position] if self.temperatures else 1.0

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
            "policy_model": self.policy_model,
            "temperatures": list(self.temperatures),
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
        expected_folder = (
            "a segmented early-exit model folder written by codesign.deploy.segments.export_segments"
        )
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
            raise input_error(path, "policy", f"one of {list(POLICIES)}", policy)
        policy_model = data.get("policy_model")
        if policy_model is not None or POLICIES[policy].learned:
            try:
                fitted = LearnedConfidence.from_dict(policy_model)
            except (TypeError, ValueError, AttributeError):
                raise input_error(
                    path,
                    "policy_model",
                    "the learned policy's fitted model (one entry per exit stage)",
                    policy_model,
                ) from None
            if not set(exit_stages) <= set(fitted.exits):
                raise input_error(
                    path, "policy_model", f"a model for every exit stage {exit_stages}", sorted(fitted.exits)
                )
        temperatures = data.get("temperatures", [])
        if not isinstance(temperatures, list) or (
            temperatures
            and (
                len(temperatures) != len(exit_stages)
                or not all(
                    isinstance(t, int | float) and not isinstance(t, bool) and t > 0 for t in temperatures
                )
            )
        ):
            raise input_error(
                path, "temperatures", f"{len(exit_stages)} positive numbers (one per exit)", temperatures
            )
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
            policy_model=policy_model,
            temperatures=tuple(float(t) for t in temperatures),
            input_shape=tuple(input_shape),
            num_classes=num_classes,
            spec_key=spec_key,
            spec=spec,
        )


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
    policy_model: LearnedConfidence | None = None,
    temperatures: Sequence[float] | None = None,
) -> SegmentedModel:
    """Write `model` cut at its active exits to `folder` (segment ONNX files, head ONNX files, manifest).

    `thresholds` default to `model.spec.active_thresholds`; `policy` to the spec's/model's `exit_policy`
    or `policy` string if it has one, else score margin; `temperatures` (one per active exit, fitted on
    validation) to 1 each. The folder is written under a temporary name
    beside it and renamed into place; an existing segmented-model folder there is replaced, any other
    non-empty folder is refused.
    """
    import torch

    from codesign.deploy.qcdq import export_module_qcdq

    spec = model.spec
    folder = Path(folder)
    exit_stages = tuple(int(s) for s in spec.active_exit_stages)
    thresholds = tuple(float(t) for t in (spec.active_thresholds if thresholds is None else thresholds))
    policy = _model_policy(model) if policy is None else policy
    if policy not in POLICIES:
        raise CodesignError(f"policy: expected one of {list(POLICIES)}, got {policy!r}")
    if POLICIES[policy].learned and policy_model is None:
        raise CodesignError("policy_model: expected the learned policy's fitted model for policy 'learned'")
    if len(thresholds) != len(exit_stages) - 1:
        raise CodesignError(
            f"thresholds: expected {len(exit_stages) - 1} values (one per early exit), got {len(thresholds)}"
        )
    temperatures = tuple(float(t) for t in temperatures) if temperatures else tuple(1.0 for _ in exit_stages)
    if len(temperatures) != len(exit_stages) or not all(t > 0 for t in temperatures):
        raise CodesignError(
            f"temperatures: expected {len(exit_stages)} positive values (one per exit), got {temperatures}"
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
                export_module_qcdq(segment, x, tmp / name, [INPUT_NAME], [FEATURES_NAME])
                segment_files.append(name)
                x = segment(x)
                head = _head_module(model, exit_stage).eval()
                head_name = f"head{position}_stage{exit_stage}.onnx"
                export_module_qcdq(head, x, tmp / head_name, [FEATURES_NAME], [LOGITS_NAME])
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
            policy_model=policy_model.to_dict() if policy_model is not None else None,
            temperatures=temperatures,
        )
        (tmp / MANIFEST_NAME).write_text(json.dumps(segmented.to_manifest(), indent=2) + "\n")
        replace_folder(tmp, folder)
    finally:
        model.train(was_training)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return segmented


def static_graph(segments: list[Any], final_head: Any):  # noqa: ANN202 (an onnx ModelProto)
    """The whole network without its early exits, as one graph: every segment, then the final head
    (onnx ModelProtos, left unchanged)."""
    import onnx
    from onnx import helper

    from codesign.deploy.decisions import PREDICTION

    graph = onnx.compose.add_prefix(segments[0], "s0_")
    current = f"s0_{FEATURES_NAME}"
    parts = [*segments[1:], final_head]
    for index, part in enumerate(parts, start=1):
        port = INPUT_NAME if index < len(parts) else FEATURES_NAME
        output = FEATURES_NAME if index < len(parts) else LOGITS_NAME
        graph = onnx.compose.merge_models(
            graph,
            part,
            io_map=[(current, port)],  # the second name before its prefix (merge_models adds it)
            prefix2=f"p{index}_",
            outputs=[f"p{index}_{output}"],
        )
        current = f"p{index}_{output}"
    graph.graph.node.append(
        helper.make_node("ArgMax", [current], [PREDICTION], name="static_argmax", axis=1, keepdims=0)
    )
    del graph.graph.output[:]
    graph.graph.output.append(helper.make_tensor_value_info(PREDICTION, onnx.TensorProto.INT64, ["batch"]))
    for node in graph.graph.node:
        node.input[:] = [INPUT_NAME if n == f"s0_{INPUT_NAME}" else n for n in node.input]
    for value in graph.graph.input:
        if value.name == f"s0_{INPUT_NAME}":
            value.name = INPUT_NAME
    return graph
