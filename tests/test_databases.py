"""codesign's SQLite files are used only once recognised as codesign's; anything else is refused untouched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from codesign.cost.cache import LayerCostCache
from codesign.databases import SCHEMA_VERSION
from codesign.errors import CodesignError
from codesign.hardware.cacti import CactiQuery, cacti_costs
from codesign.runs.store import RunStore


def users_database(path: Path) -> Path:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE measurements (id INTEGER PRIMARY KEY, value REAL)")
        connection.execute("INSERT INTO measurements VALUES (1, 2.5)")
    connection.close()
    return path


def wrong_schema(path: Path) -> Path:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE layer_costs (key TEXT, energy REAL)")
    connection.close()
    return path


def beside_codesigns(path: Path) -> Path:
    LayerCostCache(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
    connection.close()
    return path


def future_version(path: Path) -> Path:
    LayerCostCache(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    connection.close()
    return path


NOT_OURS = {
    "a user's own database": (
        users_database,
        "tables codesign does not write: measurements; no layer_costs table",
    ),
    "codesign's table name with another schema": (
        wrong_schema,
        "table layer_costs has columns ['key', 'energy']",
    ),
    "codesign's table beside one of the user's": (beside_codesigns, "tables codesign does not write: notes"),
    "a schema version codesign did not write": (future_version, f"schema version {SCHEMA_VERSION + 1}"),
    "a text file": (lambda p: p.write_text("not a database") and p, "not an SQLite database"),
    "a folder": (lambda p: p.mkdir() or p, "a folder"),
}


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", list(NOT_OURS))
@pytest.mark.parametrize("opener", ["cost cache", "run store", "CACTI cache"])
def test_a_database_that_is_not_codesigns_is_refused_and_left_byte_for_byte(
    case: str, opener: str, tmp_path: Path
):
    make, problem = NOT_OURS[case]
    path = make(tmp_path / "given.sqlite")
    before = folder_bytes(tmp_path)
    with pytest.raises(CodesignError) as refused:
        if opener == "cost cache":
            LayerCostCache(path)
        elif opener == "run store":
            RunStore(path)
        else:
            cacti_costs(CactiQuery("sram", 4096, 64, 1, 1, 0), path)
    line = str(refused.value)
    assert "\n" not in line and line.startswith(f"{path}: database: expected ")
    assert "delete" not in line and "untouched" in line
    if opener == "cost cache":  # (the others are refused for codesign's layer_costs table too)
        assert problem in line, line
    assert folder_bytes(tmp_path) == before  # the file, and no -wal/-shm beside it


def test_codesigns_own_cache_cut_in_half_may_be_deleted(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    cache = LayerCostCache(path)
    cache._connection.executemany(
        "INSERT INTO layer_costs VALUES (?,1,1,1,1,1,1,'{}','a',0,'{}')",
        [(f"k{i}" * 40,) for i in range(2000)],
    )
    cache.close()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CodesignError, match="delete it safely"):
        LayerCostCache(path)


def test_codesigns_own_damaged_cache_may_be_deleted(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    LayerCostCache(path).close()
    with sqlite3.connect(path) as connection:  # garbage in the table's pages, the schema intact
        page = connection.execute("PRAGMA page_size").fetchone()[0]
        root = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'layer_costs'").fetchone()[
            0
        ]
    connection.close()
    data = bytearray(path.read_bytes())
    data[(root - 1) * page : root * page] = b"\xff" * page
    path.write_bytes(bytes(data))
    with pytest.raises(CodesignError, match="delete it safely"):
        LayerCostCache(path)


def test_a_new_cache_is_made_whole_with_codesigns_schema_version(tmp_path: Path):
    path = tmp_path / "deeper" / "c.sqlite"
    cache = LayerCostCache(path)
    assert len(cache) == 0
    cache.close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.startswith("c.sqlite")) == []


def test_an_empty_file_becomes_a_cache_and_an_older_codesign_cache_is_upgraded(tmp_path: Path):
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    LayerCostCache(empty).close()
    assert empty.read_bytes().startswith(b"SQLite format 3\x00")
    older = tmp_path / "older.sqlite"
    with sqlite3.connect(
        older
    ) as connection:  # a cache from before breakdowns were kept, and before versions
        connection.execute(
            "CREATE TABLE layer_costs (key TEXT PRIMARY KEY, energy_pj REAL NOT NULL, latency_cycles REAL NOT NULL, "
            "mac_energy_pj REAL NOT NULL, memory_energy_pj REAL NOT NULL, ideal_cycles REAL NOT NULL, "
            "utilization REAL NOT NULL, layer_json TEXT NOT NULL, accelerator TEXT NOT NULL, created REAL NOT NULL)"
        )
    connection.close()
    cache = LayerCostCache(older)
    columns = [row[1] for row in cache._connection.execute("PRAGMA table_info(layer_costs)")]
    cache.close()
    assert columns[-1] == "detail_json"
