"""Step: ONNX. QCDQ export of a network, segmented export cut at its exits, and the onnxruntime
early-exit runtime."""

from codesign.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "export_qcdq": "qcdq",
        "compare_outputs": "qcdq",
        "onnxruntime_session": "sessions",
        "export_segments": "segments",
        "SegmentedModel": "segments",
        "EarlyExitRuntime": "runtime",
    },
)
