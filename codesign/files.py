"""Reading user files with one-line errors, writing files so that nothing half-written is left, and
finding the libraries shipped with codesign (accelerators, workloads)."""

from __future__ import annotations

import os
import shutil
import sqlite3
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

    atomic_write(path, lambda tmp: torch.save(state, tmp))


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


def open_database(
    path: Path,
    schema: tuple[str, ...],
    tables: dict[str, tuple[str, ...]],
    what: str,
    remedy: str,
    create: bool = True,
    upgrades: dict[str, tuple[str, ...]] | None = None,
    check_integrity: bool = False,
) -> sqlite3.Connection:
    """An SQLite database in WAL mode (many readers, serialised writers, safe across processes) holding
    `tables` (name -> columns). A file that is not such a database, or cannot be opened, is a one-line
    error naming it, what it should be (`what`) and what to do (`remedy`). `create`: make the tables if
    missing (else a database without them is refused). `upgrades`: columns added to a table since its
    first version, added to an older file in place (its rows get NULL there). `check_integrity`: read every
    page once now (SQLite's quick_check, milliseconds on a run store) so that damaged data is named here,
    not by the first query that happens to touch it."""
    problem = None
    connection = None
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(str(path), timeout=60.0, isolation_level=None)
        connection.execute("PRAGMA busy_timeout=60000")
        present = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if create:
            connection.execute("PRAGMA journal_mode=WAL")
            for statement in schema:
                connection.execute(statement)
        elif not set(tables) <= present:
            problem = f"no {', '.join(sorted(set(tables) - present))} table"
        for table, columns in tables.items():
            if problem is None:
                found = tuple(row[1] for row in connection.execute(f"PRAGMA table_info({table})"))
                added = (upgrades or {}).get(table, ())
                if create and added and found == tuple(c for c in columns if c not in added):
                    for column in added:
                        connection.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
                    found = columns
                if found != columns:
                    problem = f"table {table} has columns {list(found)}"
        if problem is None:  # a first row of each table: cheap, and finds a table whose pages are garbage
            for table in tables:
                connection.execute(f"SELECT * FROM {table} LIMIT 1").fetchall()
        if problem is None and check_integrity:
            verdict = [row[0] for row in connection.execute("PRAGMA quick_check")]
            if verdict != ["ok"]:
                problem = f"its data is damaged (SQLite quick_check: {verdict[0]})"
    except sqlite3.Error as exc:
        problem = str(exc)
    except OSError as exc:
        if connection is not None:
            connection.close()
        raise CodesignError(
            f"{path}: file: expected a location where {what} can be kept ({exc.strerror}: {exc.filename}); choose another"
        ) from None
    if problem is not None:
        if connection is not None:
            connection.close()
        raise CodesignError(f"{path}: database: expected {what} ({problem}); {remedy}")
    return connection


class DamagedDatabase(CodesignError):
    """A database that opened but failed on a query: one line naming it and saying whether it can go."""


def damaged(path: Path, what: str, remedy: str, exc: sqlite3.Error) -> DamagedDatabase:
    return DamagedDatabase(f"{path}: database: expected {what} (SQLite: {exc}); {remedy}")


def user_cache_dir() -> Path:
    """`$CODESIGN_CACHE_DIR`, else `$XDG_CACHE_HOME/codesign`, else `~/.cache/codesign`: where codesign keeps
    what it can compute again (layer costs, trained supernets), each in its own place there."""
    base = os.environ.get("CODESIGN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "codesign"
    )
    return Path(base)
