"""Export a trained early-exit network to ONNX in Brevitas QCDQ form, with one graph output per exit."""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from codesign.network.model import EarlyExitNet


def exit_output_names(model: EarlyExitNet) -> list[str]:
    return [f"exit{i}" for i in model.spec.active_exit_stages]


def export_qcdq(model: EarlyExitNet, path: str | Path, batch_size: int = 1) -> Path:
    """Write the QCDQ ONNX of `model` atomically to `path` (TorchScript exporter, opset 13).

    The TorchScript path keeps module names in node names (which `codesign.cost.graph` relies on) and
    supports quantized bias; initializers that the exporter lists as graph inputs are removed.
    """
    from brevitas.export import export_onnx_qcdq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = model.spec
    example = torch.zeros(batch_size, spec.in_channels, spec.resolution, spec.resolution)
    model.eval()
    fd, tmp_name = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx_qcdq(
                model,
                args=example,
                export_path=tmp_name,
                dynamo=False,
                opset_version=13,
                input_names=["input"],
                output_names=exit_output_names(model),
                dynamic_axes={"input": {0: "batch"}, **{n: {0: "batch"} for n in exit_output_names(model)}},
            )
        proto = onnx.load(tmp_name)
        _drop_initializer_inputs(proto)
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp_name)
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
    return path


def _drop_initializer_inputs(proto: onnx.ModelProto) -> None:
    initializers = {init.name for init in proto.graph.initializer}
    kept = [inp for inp in proto.graph.input if inp.name not in initializers]
    del proto.graph.input[:]
    proto.graph.input.extend(kept)


def onnxruntime_session(path: str | Path):
    """An onnxruntime session with graph optimisations off.

    At EXTENDED/ALL, onnxruntime fuses QCDQ into integer kernels whose rounding differs from the
    PyTorch fake-quantized model (see shared notes); with them off the outputs agree to ~1e-6.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


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
