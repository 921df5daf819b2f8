"""Run store: every evaluated candidate of a run in one SQLite file, so a killed run resumes."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from codesign.evaluation.evaluator import CandidateResult

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS evaluations (
        spec_key TEXT PRIMARY KEY,
        spec_json TEXT NOT NULL,
        result_json TEXT NOT NULL,
        created REAL NOT NULL
    )""",
)


class RunStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=60000")
        for statement in SCHEMA:
            self._db.execute(statement)

    def get(self, spec_key: str) -> CandidateResult | None:
        row = self._db.execute(
            "SELECT result_json FROM evaluations WHERE spec_key = ?", (spec_key,)
        ).fetchone()
        return CandidateResult.from_dict(json.loads(row[0])) if row else None

    def put(self, result: CandidateResult, key: str | None = None) -> None:
        """Store under `key`: the key of the spec the search asked for (tuned thresholds may change the result's)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR IGNORE INTO evaluations VALUES (?, ?, ?, ?)",
                (key or result.spec.key(), result.spec.to_json(), json.dumps(result.to_dict()), time.time()),
            )

    def results(self) -> list[CandidateResult]:
        return [result for _, result in self.items()]

    def items(self) -> list[tuple[str, CandidateResult]]:
        """(key the search asked for, result), in evaluation order."""
        rows = self._db.execute(
            "SELECT spec_key, result_json FROM evaluations ORDER BY created, spec_key"
        ).fetchall()
        return [(key, CandidateResult.from_dict(json.loads(data))) for key, data in rows]

    def keys(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT spec_key FROM evaluations")}

    def set_meta(self, key: str, value: Any) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])

    def close(self) -> None:
        self._db.close()
