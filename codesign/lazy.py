"""Public faces of packages whose names are imported on first use.

Each folder of `codesign` is one pipeline step; its `__init__` lists the step's public names. Importing
them lazily keeps the light steps light: reading a workload must not import PyTorch just because the
workload names a block that a later step builds with it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`__getattr__`, `__dir__` and `__all__` for `package`, whose public `name` lives in `exports[name]`
    (a module path relative to the package, e.g. `"registry"` for `package.registry`)."""
    globals_of_package = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        globals_of_package[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals_of_package) | set(exports))

    return __getattr__, __dir__, sorted(exports)
