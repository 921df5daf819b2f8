"""A run folder's identity: the settings that determine its results, and who may continue it.

A run store keeps the configuration it was started with (`RunConfig`): the workload's contents (the
fitted space, training, cost and search settings), the accelerator's fingerprint after overrides, and
the versions of the libraries that compute results. Continuing a run with anything different would mix
two runs' results in one front, so it is refused, with what differs; a different search budget only
changes how far the same search goes, and other constraints only which of the same evaluations are
returned, so those are continued, and said so. One process at a time owns a run folder (`RunLock`).
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from codesign.config.workload import Workload
from codesign.errors import CodesignError
from codesign.runs.store import RunConfig

# Where things were found, not what they are: the same contents under another path are the same run.
LOCATIONS = ("workload", "workload_file", "accelerator_file", "mapping_file")
# How far the search goes and which evaluated networks it may return: a run may be continued with
# another budget or other constraints on purpose (its evaluations stay valid).
CONTINUABLE = (
    "search.population",
    "search.generations",
    "search.surrogate.initial",
    "search.surrogate.per_iteration",
    "search.surrogate.iterations",
    "search.constraints.",
    "search.baseline",
)
# Recorded since run identity was introduced: absent (None) in older stores, and then not compared.
RECORDED_LATER = ("space", "hardware", "versions")
# Fields added to a recorded section after it was first recorded, with the value that reproduces what
# a store without them computed: absent in the old store and equal to this value now, they match.
ADDED_LATER: dict[str, Any] = {
    "space.branches.weight_bits": [],
    "space.branches.act_bits": [],
    "space.final_branch.weight_bits": None,
    "space.final_branch.act_bits": None,
    "space.drop_reference": "final",
}
LOCK_NAME = "run.lock"
_MISSING = "(not set)"


def differences(
    stored: RunConfig, new: RunConfig, same_hardware: tuple[str, ...] = ()
) -> tuple[list[str], list[str]]:
    """(differences that make another run, differences a run may be continued with), each as
    `field old -> new`. Fields a store written by an older version did not record are not compared;
    `same_hardware`: fingerprints older versions recorded for the new run's accelerator."""
    if stored.hardware in same_hardware:
        stored = replace(stored, hardware=new.hardware)
    found: list[tuple[str, Any, Any]] = []
    _compare(_plain(stored), _plain(new), "", found)
    refused, allowed = [], []
    for path, old, value in found:
        if path.split(".")[0] in LOCATIONS:
            continue
        continuable = path in CONTINUABLE or any(path.startswith(p) for p in CONTINUABLE if p.endswith("."))
        (allowed if continuable else refused).append(f"{path} {_short(old)} -> {_short(value)}")
    return refused, allowed


def _compare(
    old: dict[str, Any], new: dict[str, Any], prefix: str, found: list[tuple[str, Any, Any]]
) -> None:
    # top level: only what the store recorded (an older store lacks newer fields); below it: every key
    keys = list(old) if not prefix else list(dict.fromkeys([*old, *new]))
    for key in keys:
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if not prefix and key in RECORDED_LATER and a is None:
            continue
        if a is _MISSING and ADDED_LATER.get(f"{prefix}{key}", _MISSING) == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            _compare(a, b, f"{prefix}{key}.", found)
        elif a != b:
            found.append((f"{prefix}{key}", a, b))


# What a workload file holds that a run's store records (the rest is fitted or resolved when the run starts).
WORKLOAD_SECTIONS = (
    "dataset", "space", "hardware_overrides", "training", "training_mode", "supernet", "finetune", "cost",
    "cost_model", "augment",
)  # fmt: skip
FITTED_SPACE = ("num_classes", "in_channels", "resolution", "cores")


def workload_edits(stored: Workload, current: Workload) -> list[str]:
    """`field old -> new` for what the workload file now says differently from the run's store. Left out:
    the search settings and what the command line may have set when the run started (`--hw`, `--epochs`,
    `--static`), which the store holds and the file never did."""
    current = replace(
        current,
        space=replace(
            current.space,
            early_exits=stored.space.early_exits,
            **{k: getattr(stored.space, k) for k in FITTED_SPACE},
        ),
        hardware_overrides=stored.hardware_overrides,
        training=replace(current.training, epochs=stored.training.epochs),
    )
    old, new = (
        json.loads(json.dumps({key: asdict(w)[key] for key in WORKLOAD_SECTIONS}, default=str))
        for w in (stored, current)
    )
    found: list[tuple[str, Any, Any]] = []
    _compare(old, new, "", found)
    return [f"{path} {_short(a)} -> {_short(b)}" for path, a, b in found]


def _plain(config: RunConfig) -> dict[str, Any]:
    """The configuration as the store keeps it (JSON: tuples are lists)."""
    return json.loads(json.dumps(config.to_dict()))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def refuse_other_run(run_dir: Path, refused: list[str]) -> CodesignError:
    shown = "; ".join(refused[:4]) + (f"; and {len(refused) - 4} more" if len(refused) > 4 else "")
    return CodesignError(
        f"{run_dir}: run.db: expected the settings this run was started with, but {shown}; start a new run "
        f"in another folder (--run-dir or --runs), or continue this one unchanged with --resume {run_dir}"
    )


class RunLock:
    """An exclusive lock on `run_dir/run.lock` (flock): the operating system releases it when the owning
    process ends, however it ends, so a killed run never leaves its folder locked."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "another"
            os.close(fd)
            raise CodesignError(
                f"{self.path.parent}: {LOCK_NAME}: expected a run folder no other process is using, but codesign "
                f"process {owner} is running in it; wait for it to finish, or use another --run-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
