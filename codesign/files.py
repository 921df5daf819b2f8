"""Reading user files with one-line errors, writing files so that nothing half-written is left, and
finding the libraries shipped with codesign (accelerators, workloads)."""

from __future__ import annotations

import io
import os
import shutil
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
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; outputs get the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is None:  # a write to an open file (a full disk) names no file: this one failed
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it; done once, at import, before any threads write files
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_torch_save(state: dict[str, Any], path: Path) -> None:
    import torch

    buffer = io.BytesIO()  # serialised first: a full disk is then an OSError naming the file, not torch's own
    torch.save(state, buffer)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getbuffer()))


def read_torch_weights(path: Path) -> dict[str, Any] | None:
    """Weights `atomic_torch_save` wrote to `path`, on the CPU; None: nothing there."""
    import torch

    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def replace_folder(new: Path, target: Path) -> None:
    """Move the finished folder `new` to `target`; an existing `target` is moved aside first and removed
    afterwards, so `target` is at every moment either the old folder or the new one."""
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


# Where an installed (non-editable) package keeps the repository's `accelerators/` and `workloads/`
# folders (see pyproject.toml); a source checkout or an editable install reads them in place.
_INSTALLED_LIBRARIES = Path(__file__).resolve().parent / "_data"
_SOURCE_LIBRARIES = Path(__file__).resolve().parents[1]


def library_dir(name: str) -> Path:
    """The shipped library folder `name` (`accelerators` or `workloads`), installed or in the source tree."""
    installed = _INSTALLED_LIBRARIES / name
    return installed if installed.is_dir() else _SOURCE_LIBRARIES / name


def user_cache_dir() -> Path:
    """`$CODESIGN_CACHE_DIR`, else `$XDG_CACHE_HOME/codesign`, else `~/.cache/codesign`: where codesign keeps
    what it can compute again (layer costs, trained supernets), each in its own place there."""
    base = os.environ.get("CODESIGN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "codesign"
    )
    return Path(base)
