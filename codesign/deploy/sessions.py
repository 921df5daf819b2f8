"""onnxruntime sessions as codesign runs them (no PyTorch needed: a deployed model runs without it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codesign.errors import CodesignError


def onnxruntime_session(  # noqa: ANN201 (an InferenceSession)
    model: str | Path | Any, threads: int | None = None, optimized: bool = False
):
    """A CPU session of `model` (a file or an onnx ModelProto), sequential, without spinning.

    `optimized=False` (graph optimisations off): at EXTENDED/ALL, onnxruntime fuses QCDQ into integer kernels
    whose rounding differs from the PyTorch fake-quantized model (see shared notes); with them off the outputs
    agree to ~1e-6. `optimized=True`: full optimisation, the integer kernels, for latency.
    A segmented model has one session per segment and head; with spinning on, the idle thread pool of the
    session that just ran keeps busy-waiting while the next one works, which on a small CPU cost several
    times the inference time. `threads` sets intra-op threads (None: onnxruntime's default).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    level = ort.GraphOptimizationLevel
    options.graph_optimization_level = level.ORT_ENABLE_ALL if optimized else level.ORT_DISABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if threads is not None:
        if threads < 1:
            raise CodesignError(f"threads: expected a positive integer, got {threads}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    payload = model.SerializeToString() if hasattr(model, "SerializeToString") else str(model)
    return ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])
