"""Step: accelerators. ZigZag accelerator + mapping files validated up front, overrides by dotted path, and
questions about the memory hierarchy."""

from codesign.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "HardwareTarget": "target",
        "load_hardware": "target",
        "library_names": "target",
        "accelerator_library": "target",
        "parse_override": "overrides",
        "key_figures": "memory",
        "on_chip_weight_bytes": "memory",
    },
)
