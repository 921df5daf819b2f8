"""Reading user files with one-line errors, and writing files so that nothing half-written is left."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from codesign.errors import CodesignError


def read_yaml(path: Path, what: str) -> Any:
    """Parsed YAML, or a one-line error naming the file, the line and what was expected."""
    if not path.is_file():
        raise CodesignError(f"{path}: file: expected an existing {what} YAML file")
    try:
        with path.open() as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "document"
        raise CodesignError(
            f"{path}: {where}: expected valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Write through a temporary file in the same folder, then rename: no half-written outputs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix or ".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_torch_save(state: dict[str, Any], path: Path) -> None:
    import torch

    atomic_write(path, lambda tmp: torch.save(state, tmp))
