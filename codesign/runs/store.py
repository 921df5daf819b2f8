"""The run store: one SQLite file (`run.db`) that is the single source of truth of a run.

It holds the run's configuration (stored once, when the run starts), every evaluated candidate (written as
soon as it is finished, so a killed run resumes), the keys the search asked for per generation, the
surrogate rounds, the returned front, and each returned network's final record. Everything a run folder
shows (tables, plots, `config.json`) is rebuilt from it. Every access goes through a typed method.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codesign.cost.settings import CostModelSettings, CostOptions
from codesign.data.splits import DataSubset
from codesign.databases import open_database, writing
from codesign.errors import CodesignError
from codesign.evaluation.result import CandidateResult
from codesign.network.settings import Augmentation, FinetuneConfig, SupernetConfig, TrainingConfig
from codesign.search.settings import SearchSettings
from codesign.search.surrogate_search import IterationReport

STORE_NAME = "run.db"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS evaluations (
        spec_key TEXT PRIMARY KEY,
        spec_json TEXT NOT NULL,
        result_json TEXT NOT NULL,
        created REAL NOT NULL
    )""",
)
TABLES = {
    "meta": ("key", "value"),
    "evaluations": ("spec_key", "spec_json", "result_json", "created"),
}
# Meta keys (unchanged since the first run stores, so every store written before still opens).
_CONFIG, _GENERATIONS, _SURROGATE, _FRONT, _FINAL = "config", "generations", "surrogate", "front", "final:"
_COST_CACHE = "cost_cache"


@dataclass(frozen=True)
class RunConfig:
    """What a run was started with: the resolved workload, accelerator and settings."""

    workload: str
    workload_file: str
    dataset: str
    accelerator: str
    clock_mhz: float
    cores: int
    accelerator_file: str
    mapping_file: str
    training_mode: str
    training: TrainingConfig
    supernet: SupernetConfig
    finetune: FinetuneConfig
    cost: CostOptions
    search: SearchSettings
    early_exits: bool = True
    hardware_overrides: dict[str, Any] = field(default_factory=dict)
    hardware_search: dict[str, list[Any]] = field(default_factory=dict)
    # Recorded since run identity was introduced (None in older stores: not compared).
    space: dict[str, Any] | None = None  # the search space, fitted to the dataset and accelerator
    hardware: str | None = (
        None  # the accelerator's fingerprint after overrides (files' contents, clock, cores, models)
    )
    versions: dict[str, str] | None = None  # of the libraries that compute results
    # codesign's additions to ZigZag's cost model; stores written before they were recorded used what is
    # now residency "offchip" (and precision-aware MAC energy and non-compute costs, as now)
    cost_model: CostModelSettings = field(default_factory=lambda: CostModelSettings(residency="offchip"))
    augment: Augmentation = field(default_factory=Augmentation)  # training-time augmentation (none before)
    data: DataSubset | None = None  # the subset of each split a run used (None: every image; always, before)
    # memories whose energy per access and area CACTI gave, on the accelerator and each searched variant
    # (`hardware.cacti`; None: the accelerator file's own figures throughout)
    memory_costs: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        training = dict(data["training"])
        if training.get("exit_loss_weights") is not None:
            training["exit_loss_weights"] = tuple(training["exit_loss_weights"])
        return cls(
            workload=data["workload"],
            workload_file=data["workload_file"],
            dataset=data["dataset"],
            accelerator=data["accelerator"],
            clock_mhz=data["clock_mhz"],
            cores=data["cores"],
            accelerator_file=data["accelerator_file"],
            mapping_file=data["mapping_file"],
            training_mode=data["training_mode"],
            training=TrainingConfig(**training),
            supernet=SupernetConfig(**data["supernet"]),
            finetune=FinetuneConfig(**data["finetune"]),
            cost=CostOptions(**data["cost"]),
            search=SearchSettings.from_dict(data["search"]),
            early_exits=data.get("early_exits", True),
            hardware_overrides=dict(data.get("hardware_overrides", {})),
            hardware_search={k: list(v) for k, v in data.get("hardware_search", {}).items()},
            space=data.get("space"),
            hardware=data.get("hardware"),
            versions=data.get("versions"),
            cost_model=CostModelSettings(**data.get("cost_model", {"residency": "offchip"})),
            augment=Augmentation(**data.get("augment", {})),
            data=DataSubset(**data["data"]) if data.get("data") else None,
            memory_costs=data.get("memory_costs"),
        )


@dataclass(frozen=True)
class FinalRecord:
    """A returned network after the run's last step: its final figures and its exported files."""

    result: CandidateResult
    onnx: str  # path relative to the run folder
    onnx_max_abs_diff: float
    onnx_max_rel_diff: float | None = None
    onnx_top1_agreement: float | None = None
    segments: str = ""  # folder relative to the run folder

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "result": self.result.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinalRecord:
        return cls(
            result=CandidateResult.from_dict(data["result"]),
            onnx=data["onnx"],
            onnx_max_abs_diff=data["onnx_max_abs_diff"],
            onnx_max_rel_diff=data.get("onnx_max_rel_diff"),
            onnx_top1_agreement=data.get("onnx_top1_agreement"),
            segments=data.get("segments", ""),
        )


@dataclass(frozen=True)
class RunContents:
    """What a run's outputs are built from, read from its store in one go."""

    config: RunConfig | None
    settings: SearchSettings
    items: list[tuple[str, CandidateResult]]  # (the key the search asked for, its result)
    finals: dict[str, FinalRecord]
    generations: list[list[str]]
    surrogate_rounds: list[IterationReport]


class RunStore:
    def __init__(self, path: str | Path, create: bool = True):
        """The store at `path`, created if missing (`create`), else it must already be a run store."""
        self.path = Path(path)
        self._db = open_database(
            self.path,
            SCHEMA,
            TABLES,
            "a run store written by `codesign explore`",
            "it holds the run's results: keep it (restore a copy if you have one) and start a new run in "
            "another folder (--run-dir)",
            create=create,
            check_integrity=True,
            foreign="codesign leaves it untouched: give a run folder `codesign explore` wrote, or a new one",
        )

    @classmethod
    def of_run(cls, run_dir: str | Path) -> RunStore:
        """The store of an existing run folder, or a one-line error if the folder holds none."""
        path = Path(run_dir) / STORE_NAME
        if not path.is_file() or path.stat().st_size == 0:
            raise CodesignError(
                f"{run_dir}: {STORE_NAME}: expected a run folder written by `codesign explore`"
            )
        store = cls(path, create=False)
        if store.config() is None:
            store.close()
            raise CodesignError(
                f"{path}: config: expected a run store written by `codesign explore` (it holds no run configuration)"
            )
        return store

    # ------------------------------------------------------------------ evaluated candidates

    def get(self, spec_key: str) -> CandidateResult | None:
        row = self._db.execute(
            "SELECT result_json FROM evaluations WHERE spec_key = ?", (spec_key,)
        ).fetchone()
        return self._result(spec_key, row[0]) if row else None

    def _result(self, key: str, text: str) -> CandidateResult:
        """One stored evaluation, or a one-line error naming the store, the evaluation and what is wrong."""
        return self._parsed(
            f"evaluation {key}", lambda data: CandidateResult.from_dict(json.loads(data)), text
        )

    def put(self, result: CandidateResult, key: str | None = None) -> None:
        """Store under `key`: the key of the spec the search asked for (tuned thresholds may change the result's)."""
        with writing(self.path), self._db:
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
        return [(key, self._result(key, data)) for key, data in rows]

    def keys(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT spec_key FROM evaluations")}

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])

    # ------------------------------------------------------------------ the run's configuration and progress

    def config(self) -> RunConfig | None:
        data = self._get(_CONFIG)
        return self._parsed("configuration", RunConfig.from_dict, data) if data else None

    def set_config(self, config: RunConfig) -> None:
        self._set(_CONFIG, config.to_dict())

    def search_settings(self) -> SearchSettings:
        """The search settings the run was started with (defaults for a store without a configuration)."""
        config = self.config()
        return config.search if config is not None else SearchSettings()

    def generations(self) -> list[list[str]]:
        """Per generation (or surrogate batch), the keys the search asked for."""
        return self._get(_GENERATIONS, [])

    def set_generations(self, generations: list[list[str]]) -> None:
        self._set(_GENERATIONS, generations)

    def surrogate_rounds(self) -> list[IterationReport]:
        return [IterationReport(**data) for data in self._get(_SURROGATE, [])]

    def set_surrogate_rounds(self, rounds: list[IterationReport]) -> None:
        self._set(_SURROGATE, [asdict(r) for r in rounds])

    def front(self) -> list[str]:
        """Keys of the returned networks, in front order."""
        return self._get(_FRONT, [])

    def set_front(self, keys: list[str]) -> None:
        self._set(_FRONT, keys)

    def cost_cache(self) -> str | None:
        """The layer-cost cache the run last used (what `codesign cost` of its networks reads by default)."""
        return self._get(_COST_CACHE)

    def set_cost_cache(self, path: str | Path) -> None:
        self._set(_COST_CACHE, str(Path(path).resolve()))

    def final_of_onnx(self, relative: str) -> FinalRecord | None:
        """The returned network exported to `relative` (a path inside the run folder), if any."""
        return next((record for record in self.finals().values() if record.onnx == relative), None)

    def final(self, key: str) -> FinalRecord | None:
        data = self._get(_FINAL + key)
        return self._parsed(f"final record {key}", FinalRecord.from_dict, data) if data else None

    def set_final(self, key: str, record: FinalRecord) -> None:
        self._set(_FINAL + key, record.to_dict())

    def finals(self) -> dict[str, FinalRecord]:
        """The final record of each returned network that has one, in front order."""
        records = {key: self.final(key) for key in self.front()}
        return {key: record for key, record in records.items() if record is not None}

    def contents(self) -> RunContents:
        config = self.config()
        return RunContents(
            config=config,
            settings=config.search if config is not None else SearchSettings(),
            items=self.items(),
            finals=self.finals(),
            generations=self.generations(),
            surrogate_rounds=self.surrogate_rounds(),
        )

    def _parsed(self, what: str, parse: Any, data: Any) -> Any:
        try:
            return parse(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problem = (
                f"field {exc.args[0]!r} missing"
                if isinstance(exc, KeyError)
                else f"{type(exc).__name__}: {exc}"
            )
            raise CodesignError(
                f"{self.path}: {what}: expected it complete ({problem}); the store was changed by something else "
                "than codesign: restore a copy, or start a new run (--run-dir)"
            ) from None

    def _get(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def _set(self, key: str, value: Any) -> None:
        with writing(self.path), self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
