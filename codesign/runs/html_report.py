"""`report.html`: one self-contained, offline page per run to click through (Plotly's JavaScript embedded).

The page shows the Pareto front on test figures against expected energy, latency or EDP (switchable), with
every evaluated candidate behind it, constraint violations, the static baseline front, each returned
network's own static counterpart and oracle bound; clicking a network shows its spec, exits, thresholds, exit
fractions, per-exit energy by memory level, per-layer costs and links to its files. Below: hypervolume per
generation, surrogate rounds, the run's settings, the accelerator's key figures and the tool versions.
Everything comes from the run store (and, for per-layer costs, the layer-cost cache).
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from codesign.cost.exits import Allocation
from codesign.cost.report import cost_onnx
from codesign.errors import CodesignError
from codesign.evaluation.result import CandidateResult
from codesign.files import atomic_write_text
from codesign.hardware.memory import key_figures
from codesign.hardware.target import HardwareTarget, load_hardware, load_variant
from codesign.runs.baseline import compare_fronts
from codesign.runs.store import RunConfig, RunContents
from codesign.search.objectives import constraint_values

REPORT_NAME = "report.html"
Reporter = Callable[[str], None]


@dataclass(frozen=True)
class ReportPage:
    path: Path
    size_bytes: int
    notes: tuple[str, ...]


def write_html_report(
    run_dir: Path,
    contents: RunContents,
    static_front: list[CandidateResult] | None,
    hypervolumes: list[float],
    cache_path: Path | None = None,
) -> ReportPage:
    """Write `run_dir/report.html` from the run's stored contents; `static_front`: the baseline's returned
    networks; `hypervolumes`: per generation; `cache_path`: the layer-cost cache the per-layer costs of
    returned networks are read from (ZigZag runs for what it lacks)."""
    data, notes = report_data(run_dir, contents, static_front, hypervolumes, cache_path)
    page = render(data)
    path = run_dir / REPORT_NAME
    atomic_write_text(path, page)
    return ReportPage(path, len(page.encode()), tuple(notes))


def report_data(
    run_dir: Path,
    contents: RunContents,
    static_front: list[CandidateResult] | None,
    hypervolumes: list[float],
    cache_path: Path | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Everything the page shows, as JSON-ready data, and notes on what could not be included."""
    config, settings, items, finals = contents.config, contents.settings, contents.items, contents.finals
    notes: list[str] = []
    candidates = []
    for generation, (key, result) in _with_generation(items, contents.generations):
        record = finals.get(key)
        shown = record.result if record else result
        violations = constraint_values(shown, settings.constraints)
        candidates.append(
            {
                **_network(shown),
                "search_key": key,
                "generation": generation,
                "returned": record is not None,
                "feasible": all(v <= 0 for v in violations),
                "violations": {
                    name: v for name, v in zip(settings.constraints.active, violations, strict=True) if v > 0
                },
                "onnx": record.onnx if record and (run_dir / record.onnx).is_file() else None,
                "segments": record.segments if record and record.segments else None,
                "val_accuracy_searched": result.val.accuracy,
            }
        )
    base = _base_target(config, notes)
    layers: dict[str, list[dict[str, Any]]] = {}
    schedules: dict[str, list[dict[str, Any]]] = {}
    if base is not None and config is not None:
        for record in finals.values():
            costed = _layer_rows(run_dir, record.onnx, record.result, base, config, cache_path, notes)
            if costed is not None:  # by the returned network's own key (its thresholds may be re-tuned)
                layers[record.result.spec.key()], schedule = costed
                if schedule:
                    schedules[record.result.spec.key()] = schedule
    data = {
        "title": f"codesign run {run_dir.name}",
        "run": {
            "folder": str(run_dir),
            "workload": config.workload if config else "",
            "dataset": config.dataset if config else "",
            "accelerator": config.accelerator if config else "",
            "objectives": list(settings.objectives),
            "constraints": {
                name: getattr(settings.constraints, name) for name in settings.constraints.active
            },
            "evaluated": len(items),
            "returned": len(finals),
        },
        "candidates": candidates,
        "static_front": [_network(r) for r in static_front or []],
        "baseline": [
            _plain(row.row())
            for row in compare_fronts([record.result for record in finals.values()], static_front or [])
        ],
        "layers": layers,
        "schedules": schedules,
        "hypervolume": [v if math.isfinite(v) else None for v in hypervolumes],
        "surrogate": [
            {"round": r.iteration, "archive": r.archive_size, "chosen": r.chosen, "tau": r.new_tau}
            for r in contents.surrogate_rounds
        ],
        "accelerator": _plain(key_figures(base)) if base is not None else {},
        "settings": _plain(config.to_dict()) if config else {},
        "versions": dict(config.versions or {}) if config else {},
        "notes": notes,
    }
    return data, notes


def compare_data(
    parts: list[tuple[Path, RunContents, list[CandidateResult] | None, list[float], Path | None]],
) -> dict[str, Any]:
    """Several runs' page data merged into one page: candidates, verdicts and per-layer costs carry their run's
    label (the folder name, or folder and accelerator where two folders share a name)."""
    names = [run_dir.name for run_dir, *_ in parts]
    merged: dict[str, Any] = {}
    runs = []
    for (run_dir, contents, static_front, volumes, cache), name in zip(parts, names, strict=True):
        data, _ = report_data(run_dir, contents, static_front, volumes, cache)
        label = name if names.count(name) == 1 else f"{run_dir.parent.name}/{name}"
        for candidate in data["candidates"]:
            candidate["run"] = label
            candidate["layer_key"] = f"{label}:{candidate['key']}"
        for row in data["baseline"]:
            row["run"] = label
        for network in data["static_front"]:
            network["run"] = label
        runs.append({**data["run"], "label": label, "accelerator_figures": data["accelerator"]})
        if not merged:
            merged = {
                **data,
                "candidates": [],
                "baseline": [],
                "static_front": [],
                "layers": {},
                "schedules": {},
            }
        merged["candidates"] += data["candidates"]
        merged["baseline"] += data["baseline"]
        merged["static_front"] += data["static_front"]
        merged["layers"].update({f"{label}:{k}": v for k, v in data["layers"].items()})
        merged["schedules"].update({f"{label}:{k}": v for k, v in data["schedules"].items()})
    merged["title"] = "codesign runs compared: " + " vs ".join(run["label"] for run in runs)
    merged["runs"] = runs
    merged["notes"] = [f"search progress and settings below are those of {runs[0]['label']}, the first run"]
    return merged


def render(data: dict[str, Any]) -> str:
    """The page: template + Plotly's JavaScript + the page's own script + the data, all inline."""
    import plotly.offline

    folder = resources.files("codesign.runs")
    template = (folder / "report_page.html").read_text()
    script = (folder / "report_page.js").read_text()
    # JSON inside a script element: no "<" at all, so nothing in it can close the element
    payload = json.dumps(data, allow_nan=False).replace("<", "\\u003c")
    pieces = {
        "__TITLE__": html.escape(data["title"]),
        "/*__PLOTLY__*/": plotly.offline.get_plotlyjs(),
        "/*__PAGE__*/": script,
        "__DATA__": payload,
    }
    # one pass: text put in for one marker is never searched for the others
    return re.sub("|".join(re.escape(marker) for marker in pieces), lambda m: pieces[m.group(0)], template)


def _network(result: CandidateResult) -> dict[str, Any]:
    """A network's figures as the page shows them: test figures where it was run on test."""
    stats, expected, static_accuracy = result.reported
    spec = result.spec
    exits = []
    for position, (stage, cost) in enumerate(zip(spec.active_exit_stages, result.exits, strict=True)):
        exits.append(
            {
                "stage": stage,
                "threshold": spec.active_thresholds[position]
                if position < len(spec.active_thresholds)
                else None,
                "fraction": stats.fractions[position],
                "oracle_fraction": result.oracle_test.fractions[position] if result.oracle_test else None,
                "accuracy": stats.exit_accuracies[position],
                "ece": stats.calibration_errors[position] if stats.calibration_errors else None,
                "ece_raw": stats.calibration_errors_raw[position] if stats.calibration_errors_raw else None,
                "temperature": stats.temperatures[position] if stats.temperatures else None,
                "energy_nj": cost.energy_pj / 1e3,
                "latency_us": result.seconds(cost.latency_cycles) * 1e6,
                "parts_nj": {part: e / 1e3 for part, e in cost.energy_by_part.items()},
            }
        )
    oracle = result.expected_oracle_test
    return _plain(
        {
            "key": spec.key(),
            "split": "test" if result.test is not None else "validation",
            "backbone": spec.describe(),
            "exits_text": spec.describe_exits(),
            "hardware": spec.describe_hardware(),
            "policy": spec.policy,
            "widths": [s.width for s in spec.stages],
            "depths": [s.depth for s in spec.stages],
            "area": result.chip_area,
            "weight_bits": [s.weight_bits for s in spec.stages],
            "act_bits": [s.act_bits for s in spec.stages],
            "accuracy": stats.accuracy,
            "energy_nj": expected.energy_pj / 1e3,
            "latency_us": result.seconds(expected.latency_cycles) * 1e6,
            "worst_latency_us": result.seconds(expected.worst_latency_cycles) * 1e6,
            "macs": expected.macs,
            "exit_overhead_nj": expected.exit_overhead_pj / 1e3,
            "weight_kib": result.weight_bytes / 1024,
            "weight_kib_on_chip": _kib(result.weight_bytes_on_chip),
            "weight_kib_streamed": _kib(result.weight_bytes_streamed),
            "weight_load_nj": result.weight_load_energy_pj / 1e3
            if result.weight_load_energy_pj is not None
            else None,
            "static": {
                "accuracy": static_accuracy,
                "energy_nj": result.static.energy_pj / 1e3,
                "latency_us": result.seconds(result.static.latency_cycles) * 1e6,
            },
            "oracle": {
                "accuracy": result.oracle_test.accuracy if result.oracle_test else None,
                "energy_nj": oracle.energy_pj / 1e3,
                "latency_us": result.seconds(oracle.latency_cycles) * 1e6,
            }
            if oracle is not None
            else None,
            "exits": exits,
            "accelerator": result.accelerator,
        }
    )


def _with_generation(
    items: list[tuple[str, CandidateResult]], generations: list[list[str]]
) -> list[tuple[int | None, tuple[str, CandidateResult]]]:
    first: dict[str, int] = {}
    for index, keys in enumerate(generations, 1):
        for key in keys:
            first.setdefault(key, index)
    return [(first.get(key), (key, result)) for key, result in items]


def _base_target(config: RunConfig | None, notes: list[str]) -> HardwareTarget | None:
    if config is None:
        notes.append("the run store has no configuration: no accelerator figures or per-layer costs")
        return None
    try:
        return load_hardware(
            config.accelerator_file, config.mapping_file, overrides=dict(config.hardware_overrides)
        )
    except CodesignError as error:
        notes.append(
            f"accelerator files not readable here ({error}): no accelerator figures or per-layer costs"
        )
        return None


def _layer_rows(
    run_dir: Path,
    onnx: str,
    result: CandidateResult,
    base: HardwareTarget,
    config: RunConfig,
    cache_path: Path | None,
    notes: list[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """Per-layer energy (by memory level, and MACs), latency and mapping of a returned network, from its ONNX
    file; and its multi-core schedule (empty on one core)."""
    path = run_dir / onnx
    if not path.is_file():
        notes.append(f"{onnx}: missing, no per-layer costs for {result.spec.key()}")
        return None
    spec = result.spec
    target = (
        load_variant(base, {**dict(config.hardware_overrides), **spec.hardware_overrides()})
        if spec.hardware
        else base
    )
    allocation = Allocation(spec.stage_cores, spec.head_cores) if spec.stage_cores else None
    try:
        report = cost_onnx(
            path,
            target,
            options=config.cost,
            settings=config.cost_model,
            allocation=allocation,
            cache_path=cache_path,
            residency_fractions=result.residency_fractions,
        )
    except CodesignError as error:
        notes.append(f"{onnx}: no per-layer costs ({error})")
        return None
    parts: dict[str, dict[str, float]] = {}
    energy_by = report.breakdown.groupby(["name", "part"], sort=False)["energy_pj"].sum()
    for (name, part), energy in energy_by.items():
        parts.setdefault(name, {})[part] = energy / 1e3
    rows = [
        {
            "name": layer.name,
            "segment": layer.segment,
            "energy_nj": layer.energy_pj / 1e3,
            "latency_us": layer.latency_s * 1e6,
            "macs": layer.macs,
            "weights_at": layer.weights_at,
            "weight_kib": (layer.weight_bytes_on_chip + layer.weight_bytes_streamed) / 1024,
            "activations_at": layer.activations_at,
            "parts_nj": parts.get(layer.name, {}),
            "spatial_mapping": layer.spatial_mapping,
            "temporal_mapping": layer.temporal_mapping,
        }
        for layer in report.layers.itertuples(index=False)
    ]
    us = 1e6 / report.clock_hz
    schedule = [
        {
            "segment": task.segment,
            "core": task.core,
            "start_us": task.start_cycles * us,
            "finish_us": task.finish_cycles * us,
            "transfer_us": task.transfer_cycles * us,
        }
        for task in report.schedule
    ]
    return _plain(rows), _plain(schedule)


def _kib(value: float | None) -> float | None:
    return value / 1024 if value is not None else None


def _plain(value: Any) -> Any:
    """JSON-ready: tuples as lists, paths as text, non-finite numbers as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _plain(value.item())
    return value
