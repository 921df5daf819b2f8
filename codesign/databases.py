"""codesign's SQLite files (layer-cost cache, CACTI cache, run stores): opened only once recognised as codesign's.

A file given where codesign keeps one of its databases is first read through a read-only connection: it is
used only if it holds codesign's tables and nothing else, with their columns and a schema version codesign
wrote. Anything else is refused in one line, and not a byte of it changes. A missing file is made whole in a
private file beside it and linked into place, so that a concurrent reader never sees a half-made database.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from codesign.errors import CodesignError

SQLITE_HEADER = b"SQLite format 3\x00"
# PRAGMA user_version codesign writes; 0 is a file from before versions were written (recognised by its tables)
SCHEMA_VERSION = 1
# PRAGMA application_id of every database codesign makes ("cdsg"): names a damaged file as codesign's own
APPLICATION_ID = 0x63647367
_KNOWN_VERSIONS = (0, SCHEMA_VERSION)


class DamagedDatabase(CodesignError):
    """A database that opened but failed on a query: one line naming it and saying whether it can go."""


def damaged(path: Path, what: str, remedy: str, exc: sqlite3.Error) -> CodesignError:
    if is_full(exc):
        return full(path, exc)
    return DamagedDatabase(f"{path}: database: expected {what} (SQLite: {exc}); {remedy}")


def is_full(exc: sqlite3.Error) -> bool:
    """SQLite could not write because the disk (or the file-size limit) is full."""
    return getattr(exc, "sqlite_errorcode", None) == 13 or "disk is full" in str(exc)  # 13: SQLITE_FULL


def full(path: Path, exc: sqlite3.Error) -> CodesignError:
    return CodesignError(
        f"{path}: database: could not be written (SQLite: {exc}); free space on its disk: what it held is kept, "
        "and a run continues with `codesign explore --resume RUN`"
    )


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """A write to the database at `path`: a full disk ends in one line naming it (the transaction is rolled
    back, so the file keeps what it held)."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if is_full(exc):
            raise full(path, exc) from None
        raise


def open_database(
    path: Path,
    schema: tuple[str, ...],
    tables: dict[str, tuple[str, ...]],
    what: str,
    remedy: str,
    create: bool = True,
    upgrades: dict[str, tuple[str, ...]] | None = None,
    check_integrity: bool = False,
    foreign: str = "codesign leaves it untouched: give another file",
) -> sqlite3.Connection:
    """An SQLite database in WAL mode (many readers, serialised writers, safe across processes) holding
    `tables` (name -> columns). `what`: what the file should be; `remedy`: what to do with one that is
    codesign's but damaged; `foreign`: what to do with one that is not codesign's. `create`: make the file if
    missing (else a missing or empty one is refused). `upgrades`: columns added to a table since its first
    version, added to an older codesign file in place (its rows get NULL there). `check_integrity`: read every
    page once now (SQLite's quick_check, milliseconds on a run store) so that damaged data is named here, not by
    the first query that happens to touch it."""
    try:
        if create and (not path.exists() or (path.is_file() and path.stat().st_size == 0)):
            _create(path, schema)
        problem, own = _recognise(path, tables, upgrades or {})
    except OSError as exc:
        raise CodesignError(
            f"{path}: file: expected a location where {what} can be kept ({exc.strerror}: {exc.filename}); choose another"
        ) from None
    if problem is not None:
        raise CodesignError(f"{path}: database: expected {what} ({problem}); {remedy if own else foreign}")
    connection = None
    try:
        connection = sqlite3.connect(str(path), timeout=60.0, isolation_level=None)
        connection.execute("PRAGMA busy_timeout=60000")
        connection.execute("PRAGMA journal_mode=WAL")
        older = connection.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID
        if older:  # made by a codesign from before application ids: it gets its own now
            connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        for table, columns in tables.items():
            found = tuple(row[1] for row in connection.execute(f"PRAGMA table_info({table})"))
            for column in columns[len(found) :] if found != columns else ():
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
        for table in tables:  # a first row of each table: cheap, and finds a table whose pages are garbage
            connection.execute(f"SELECT * FROM {table} LIMIT 1").fetchall()
        if check_integrity:
            verdict = [row[0] for row in connection.execute("PRAGMA quick_check")]
            if verdict != ["ok"]:
                raise sqlite3.DatabaseError(f"its data is damaged (SQLite quick_check: {verdict[0]})")
    except sqlite3.Error as exc:
        if connection is not None:
            connection.close()
        raise CodesignError(f"{path}: database: expected {what} ({exc}); {remedy}") from None
    return connection


def _create(path: Path, schema: tuple[str, ...]) -> None:
    """A new database at `path`, whole or not at all: made in a private file, then linked to `path` unless
    another process made it first (then theirs is kept)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    private = path.with_name(f".{path.name}.{os.getpid()}.new")
    private.unlink(missing_ok=True)
    try:
        connection = sqlite3.connect(str(private), isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            for statement in schema:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
        finally:
            connection.close()  # the last connection checkpoints: everything is in the main file now
        try:
            os.link(private, path)
        except FileExistsError:
            if path.is_file() and path.stat().st_size == 0:  # an empty file holds nothing: replaced
                os.replace(private, path)
        except OSError:  # a file system without hard links: renamed into place unless one appeared meanwhile
            if not path.exists():
                os.replace(private, path)
    finally:
        for leftover in (
            private,
            private.with_name(private.name + "-wal"),
            private.with_name(private.name + "-shm"),
        ):
            leftover.unlink(missing_ok=True)


def _recognise(
    path: Path, tables: dict[str, tuple[str, ...]], upgrades: dict[str, tuple[str, ...]]
) -> tuple[str | None, bool]:
    """Why `path` is not one of codesign's databases holding `tables` (None if it is), read without writing, and
    whether it is codesign's own all the same (its application id says so: then the problem is damage)."""
    if path.is_dir():
        return "a folder", False
    if not path.is_file():
        return "no such file", False
    with path.open("rb") as handle:
        header = handle.read(72)
    if header[: len(SQLITE_HEADER)] != SQLITE_HEADER:
        return ("not an SQLite database" if header else "an empty file"), False
    own = len(header) == 72 and int.from_bytes(header[68:72], "big") == APPLICATION_ID
    # A WAL-mode file read even read-only gets -wal/-shm files made beside it; without a write-ahead log of its
    # own, `immutable` reads the main file alone, which then holds everything. A log that holds writes not yet
    # copied into the main file (another process at work, or one stopped by a full disk) must be read with it.
    log = path.with_name(path.name + "-wal")
    wal = header[18] == 2 and not (log.is_file() and log.stat().st_size > 0)
    try:
        connection = sqlite3.connect(
            f"file:{quote(str(path))}?mode=ro{'&immutable=1' if wal else ''}", uri=True, timeout=60.0
        )
    except sqlite3.Error as exc:
        return str(exc), own
    try:
        present = {
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        if present != set(tables):
            extra, missing = sorted(present - set(tables)), sorted(set(tables) - present)
            found = [f"tables codesign does not write: {', '.join(extra)}"] if extra else []
            return "; ".join([*found, *([f"no {', '.join(missing)} table"] if missing else [])]), False
        for table, columns in tables.items():
            found_columns = tuple(row[1] for row in connection.execute(f"PRAGMA table_info({table})"))
            older = tuple(c for c in columns if c not in upgrades.get(table, ()))
            if found_columns not in (columns, older):
                return f"table {table} has columns {list(found_columns)}", False
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version not in _KNOWN_VERSIONS:
            return f"schema version {version}, codesign writes {SCHEMA_VERSION}", False
    except sqlite3.Error as exc:
        return f"SQLite: {exc}", own
    finally:
        connection.close()
    return None, True
