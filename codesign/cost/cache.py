"""SQLite cache of per-layer ZigZag results, shared by runs and by concurrent worker processes.

A layer's cost depends only on its geometry and precisions, the accelerator and mapping contents,
the ZigZag search options and the ZigZag version; the cache key hashes exactly those.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path

from codesign.cost.layer_specs import LayerSpec
from codesign.cost.records import LayerCost
from codesign.cost.settings import CostOptions
from codesign.databases import damaged, open_database
from codesign.errors import CodesignError
from codesign.files import user_cache_dir
from codesign.hardware.target import HardwareTarget

ZIGZAG_VERSION = version("zigzag-dse")
WHAT = "codesign's layer-cost cache"
REMEDY = (
    "it only holds ZigZag results, computed again when missing: delete it safely, or choose another with "
    "--cost-cache"
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS layer_costs (
    key TEXT PRIMARY KEY,
    energy_pj REAL NOT NULL,
    latency_cycles REAL NOT NULL,
    mac_energy_pj REAL NOT NULL,
    memory_energy_pj REAL NOT NULL,
    ideal_cycles REAL NOT NULL,
    utilization REAL NOT NULL,
    layer_json TEXT NOT NULL,
    accelerator TEXT NOT NULL,
    created REAL NOT NULL,
    detail_json TEXT
)
"""


COLUMNS = (
    "key",
    "energy_pj",
    "latency_cycles",
    "mac_energy_pj",
    "memory_energy_pj",
    "ideal_cycles",
    "utilization",
    "layer_json",
    "accelerator",
    "created",
    "detail_json",  # breakdowns by memory level and latency part; added later (older rows hold NULL)
)


def cost_key(work: dict[str, object], target: HardwareTarget, options: CostOptions) -> str:
    """The cache key of costing `work` on `target` with `options` under this ZigZag version."""
    payload = {**work, "hardware": target.digest, "options": asdict(options), "zigzag": ZIGZAG_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def layer_cost_key(layer: LayerSpec, target: HardwareTarget, options: CostOptions) -> str:
    return cost_key({"layer": layer.geometry_key()}, target, options)


def default_cache_path() -> Path:
    """`layer_costs.sqlite` in the user cache folder (`files.user_cache_dir`)."""
    return user_cache_dir() / "layer_costs.sqlite"


class LayerCostCache:
    """Key -> LayerCost in one SQLite file (WAL mode: many readers, serialised writers, no lost rows)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._connection = open_database(
            self.path,
            (SCHEMA,),
            {"layer_costs": COLUMNS},
            WHAT,
            REMEDY,
            upgrades={"layer_costs": ("detail_json",)},
            foreign="codesign leaves it untouched: give another file with --cost-cache",
        )

    def _damaged(self, exc: sqlite3.DatabaseError) -> CodesignError:
        return damaged(self.path, WHAT, REMEDY, exc)

    def get_many(self, keys: Iterable[str]) -> dict[str, LayerCost]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, LayerCost] = {}
        for begin in range(0, len(keys), 500):
            chunk = keys[begin : begin + 500]
            try:
                rows = self._connection.execute(
                    "SELECT key, energy_pj, latency_cycles, mac_energy_pj, memory_energy_pj, ideal_cycles, utilization, "
                    f"detail_json FROM layer_costs WHERE key IN ({','.join('?' * len(chunk))}) AND detail_json IS NOT NULL",
                    chunk,
                ).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._damaged(exc) from None
            for key, *values, detail in rows:  # rows from before breakdowns were kept are evaluated again
                found[key] = LayerCost.from_cache(values, json.loads(detail))
        return found

    def put_many(self, items: Iterable[tuple[str, LayerSpec, str, LayerCost]]) -> None:
        rows = [
            (
                key,
                cost.energy_pj,
                cost.latency_cycles,
                cost.mac_energy_pj,
                cost.memory_energy_pj,
                cost.ideal_cycles,
                cost.utilization,
                json.dumps(layer.geometry_key(), sort_keys=True),
                accelerator,
                time.time(),
                json.dumps(cost.detail_json()),
            )
            for key, layer, accelerator, cost in items
        ]
        if not rows:
            return
        try:
            with self._connection:
                self._connection.execute("BEGIN IMMEDIATE")
                self._connection.executemany(
                    "INSERT OR REPLACE INTO layer_costs VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows
                )
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    def __len__(self) -> int:
        return int(self._connection.execute("SELECT COUNT(*) FROM layer_costs").fetchone()[0])

    def close(self) -> None:
        self._connection.close()
