"""Brevitas QCDQ ONNX export of a trained early-exit network (one graph output per exit) or of a part of it,
and onnxruntime sessions that reproduce PyTorch's outputs."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from codesign.deploy.sessions import onnxruntime_session
from codesign.errors import CodesignError
from codesign.files import atomic_write
from codesign.network.model import EarlyExitNet


def exit_output_names(model: EarlyExitNet) -> list[str]:
    return [f"exit{i}" for i in model.spec.active_exit_stages]


def _exported(
    module: torch.nn.Module, example: torch.Tensor, input_names: list[str], output_names: list[str], name: str
) -> onnx.ModelProto:
    """Brevitas's QCDQ export of `module`: TorchScript exporter, opset 13, dynamic batch; the initializers
    the exporter also lists as graph inputs removed. `name`: the file named in errors."""
    from brevitas.export import export_onnx_qcdq

    dynamic = {n: {0: "batch"} for n in (*input_names, *output_names)}
    try:
        # through a scratch file: Brevitas 0.13.4's QCDQ manager drops the model it would return in memory
        with warnings.catch_warnings(), tempfile.TemporaryDirectory() as scratch:
            warnings.simplefilter("ignore")
            export_onnx_qcdq(
                module,
                args=example,
                export_path=str(Path(scratch) / name),
                dynamo=False,
                opset_version=13,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic,
            )
            proto = onnx.load(Path(scratch) / name)
    except Exception as exc:  # the exporter's errors span many lines; keep the first, chain the rest
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise CodesignError(
            f"{name}: ONNX export: expected a module the QCDQ exporter supports, got {first[:200]}"
        ) from exc
    _drop_initializer_inputs(proto)
    return proto


def export_module_qcdq(
    module: torch.nn.Module,
    example: torch.Tensor,
    path: str | Path,
    input_names: list[str],
    output_names: list[str],
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write the QCDQ ONNX of `module` atomically to `path` (`_exported`), with `metadata` in the file's
    metadata properties.

    The TorchScript path keeps module names in node names (which `codesign.cost.graph` relies on) and
    supports quantized bias; the result is checked by onnx before it replaces `path`.
    """
    path = Path(path)

    def write(tmp: str) -> None:
        proto = _exported(module, example, input_names, output_names, path.name)
        for key, value in (metadata or {}).items():
            proto.metadata_props.add(key=key, value=value)
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)

    atomic_write(path, write)
    return path


def _example(model: EarlyExitNet, batch_size: int = 1) -> torch.Tensor:
    spec = model.spec
    return torch.zeros(batch_size, spec.in_channels, spec.resolution, spec.resolution)


def export_qcdq(
    model: EarlyExitNet, path: str | Path, batch_size: int = 1, metadata: dict[str, str] | None = None
) -> Path:
    """The QCDQ ONNX of a whole early-exit network, one graph output per active exit (`exit<i>`)."""
    model.eval()
    return export_module_qcdq(
        model, _example(model, batch_size), path, ["input"], exit_output_names(model), metadata
    )


def qcdq_graph(model: EarlyExitNet, name: str = "architecture.onnx") -> onnx.ModelProto:
    """The graph `export_qcdq` writes, in memory and unchecked (no file, no metadata): what costing a
    candidate during the search reads its layers from."""
    model.eval()
    return _exported(model, _example(model), ["input"], exit_output_names(model), name)


def _drop_initializer_inputs(proto: onnx.ModelProto) -> None:
    initializers = {init.name for init in proto.graph.initializer}
    kept = [inp for inp in proto.graph.input if inp.name not in initializers]
    del proto.graph.input[:]
    proto.graph.input.extend(kept)


@torch.no_grad()
def max_output_difference(model: EarlyExitNet, path: str | Path, images: torch.Tensor) -> float:
    """Largest absolute difference between PyTorch and onnxruntime logits over all exits."""
    session = onnxruntime_session(path)
    onnx_outputs = session.run(None, {"input": images.numpy()})
    torch_outputs = model.eval()(images)
    return float(max(np.abs(a - b.numpy()).max() for a, b in zip(onnx_outputs, torch_outputs, strict=True)))


@dataclass(frozen=True)
class OutputComparison:
    """PyTorch vs onnxruntime on the same inputs, over all exits.

    Fake-quantized PyTorch and onnxruntime accumulate in a different order, so an activation sitting
    on a rounding tie can land one quantization level apart: a small relative difference, same decisions.
    """

    max_abs_diff: float
    max_rel_diff: float  # max |difference| / max |logit|, per exit
    top1_agreement: float  # share of inputs whose arg-max agrees at every exit


@torch.no_grad()
def compare_outputs(model: EarlyExitNet, path: str | Path, images: torch.Tensor) -> OutputComparison:
    session = onnxruntime_session(path)
    onnx_outputs = session.run(None, {"input": images.numpy()})
    torch_outputs = [o.numpy() for o in model.eval()(images)]
    pairs = list(zip(onnx_outputs, torch_outputs, strict=True))
    return OutputComparison(
        max_abs_diff=float(max(np.abs(a - b).max() for a, b in pairs)),
        max_rel_diff=float(max(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12) for a, b in pairs)),
        top1_agreement=float(np.mean(np.all([a.argmax(-1) == b.argmax(-1) for a, b in pairs], axis=0))),
    )


def exit_metadata(spec: Any, temperatures: Sequence[float] | None) -> dict[str, str]:
    """The exit decision as ONNX metadata properties (`codesign.policy`, `codesign.thresholds`, one per early
    exit, `codesign.temperatures`, one per exit: the policy sees each exit's logits divided by it), so the file
    alone says how its outputs are turned into exits."""
    import json

    return {
        "codesign.policy": spec.policy,
        "codesign.thresholds": json.dumps(list(spec.active_thresholds)),
        "codesign.temperatures": json.dumps(
            list(temperatures) if temperatures else [1.0] * len(spec.active_exit_stages)
        ),
    }
