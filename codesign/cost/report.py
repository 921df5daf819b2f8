"""Cost an ONNX early-exit network on an accelerator: per-layer and per-exit tables (pandas).

report = cost_onnx("model.onnx", "edge_tpu_like", exit_fractions=(0.6, 0.3, 0.1))
report.layers     # one row per operator: segment, MACs, bit widths, energy, latency (and its parts), utilisation,
                  # where its weights and activations live, how it was modelled
report.breakdown  # one row per operator x memory level x operand: read and write energy (plus MAC energy rows)
report.exits      # one row per exit: cumulative energy/latency of reaching and taking it, energy by part
report.expected   # expected energy, latency, EDP, worst-case latency under the exit fractions
report.weight_load  # the one-time load of weights kept on chip (None: weights come from off chip)
report.weights_per_core  # per core: weight bytes kept on chip and streamed every inference
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from codesign.cost.cache import LayerCostCache
from codesign.cost.candidate import CandidateCosting
from codesign.cost.engine import CostEngine
from codesign.cost.exits import MAC, Allocation, ScheduledTask, expected_cost, idle_cycles, schedule
from codesign.cost.graph import parse_onnx
from codesign.cost.imc import ImcGraphError, is_imc
from codesign.cost.plots import plot_layer_energy, plot_timeline
from codesign.cost.records import ItemCost, LayerMapping
from codesign.cost.roles import ROLE_COLUMNS, role_energies
from codesign.cost.settings import CostModelSettings, CostOptions
from codesign.errors import CodesignError
from codesign.files import atomic_write, atomic_write_text
from codesign.hardware.area import NO_AREA, ChipArea, chip_area
from codesign.hardware.memory import memory_roles
from codesign.hardware.target import HardwareTarget, load_hardware


@dataclass(frozen=True)
class CostReport:
    model: str
    accelerator: str
    clock_hz: float
    clock_assumed: bool
    layers: pd.DataFrame
    exits: pd.DataFrame
    expected: dict[str, float] | None
    notes: tuple[str, ...]
    breakdown: pd.DataFrame
    weight_load: dict[str, float] | None = None
    # per core: the on-chip weight memory, its capacity, weight bytes kept there and streamed every inference
    weights_per_core: tuple[dict[str, Any], ...] = ()
    area: ChipArea | None = None  # None: the accelerator file states no areas
    mappings: tuple[tuple[str, LayerMapping], ...] = ()  # (layer name, how ZigZag mapped it)
    schedule: tuple[ScheduledTask, ...] = ()  # per core, when each stage and head runs (an allocation's)


def cost_onnx(
    model: str | Path,
    accelerator: str | Path | HardwareTarget = "edge_tpu_like",
    *,
    mapping: str | Path | None = None,
    exit_fractions: tuple[float, ...] | None = None,
    options: CostOptions | None = None,
    settings: CostModelSettings | None = None,
    overrides: dict[str, Any] | None = None,
    allocation: Allocation | None = None,
    cache_path: str | Path | None = None,
    jobs: int = 1,
    input_shape: tuple[int, ...] | None = None,
    residency_fractions: tuple[float, ...] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CostReport:
    """`residency_fractions`: the exit fractions the residency plan keeps weights on chip by (default:
    `exit_fractions`; neither: every layer counts as running); `progress`: called with (done, to do) while
    ZigZag costs layers the cache does not hold."""
    target = (
        accelerator
        if isinstance(accelerator, HardwareTarget)
        else load_hardware(accelerator, mapping, overrides=overrides)
    )
    network = parse_onnx(model, input_shape=input_shape)
    settings = settings or CostModelSettings()
    if exit_fractions is not None:
        if len(exit_fractions) != len(network.exit_stages):
            raise CodesignError(
                f"--exit-fractions: count: expected {len(network.exit_stages)} values (one per graph output "
                f"{', '.join(network.output_names)}), got {len(exit_fractions)}"
            )
        if (
            not all(math.isfinite(f) and f >= 0 for f in exit_fractions)
            or abs(sum(exit_fractions) - 1.0) > 1e-6
        ):
            raise CodesignError(
                f"--exit-fractions: values: expected non-negative fractions summing to 1, got {exit_fractions}"
            )
    if allocation is not None:
        _check_allocation(allocation, network.exit_stages[-1] + 1, target)
    cache = LayerCostCache(cache_path) if cache_path else None
    with CostEngine(target, options or CostOptions(), cache, jobs=jobs, progress=progress) as engine:
        costing = CandidateCosting(network, network.exit_stages, target, allocation, engine, settings)
        try:
            plan, items, exits = costing.priced(residency_fractions or exit_fractions)
            static = (
                costing.with_exits(network.exit_stages[-1:]).priced()[2][-1]
                if exit_fractions is not None
                else None
            )
        except ImcGraphError as exc:
            raise CodesignError(f"{model}: {exc}") from None
    if cache is not None:
        cache.close()
    layers = layer_table(items, target)
    exit_frame = pd.DataFrame(
        {
            "exit": list(network.output_names),
            "after_stage": [e.stage for e in exits],
            "energy_pj": [e.energy_pj for e in exits],
            "latency_cycles": [e.latency_cycles for e in exits],
            "latency_s": [e.latency_cycles / target.clock_hz for e in exits],
            "macs": [e.macs for e in exits],
            "transfer_energy_pj": [e.transfer_energy_pj for e in exits],
            **{
                column: [role_energies(e.memory_by_operand, target)[column] for e in exits]
                for column in ROLE_COLUMNS
            },
            **{
                f"energy_{part}_pj": [e.energy_by_part.get(part, 0.0) for e in exits]
                for part in dict.fromkeys(part for e in exits for part in e.energy_by_part)
            },
        }
    )
    expected = None
    if exit_fractions is not None:
        exit_frame["fraction"] = list(exit_fractions)
        exp = expected_cost(exits, exit_fractions)
        latency_s = exp.latency_cycles / target.clock_hz
        expected = {
            "energy_pj": exp.energy_pj,
            "latency_cycles": exp.latency_cycles,
            "latency_s": latency_s,
            "edp_j_s": exp.energy_pj * 1e-12 * latency_s,
            "worst_latency_cycles": exp.worst_latency_cycles,
            "macs": exp.macs,
            "static_energy_pj": static.energy_pj if static else exits[-1].energy_pj,
            "static_latency_cycles": static.latency_cycles if static else exits[-1].latency_cycles,
        }
    notes = [f"compute layers: {', '.join(sorted(set(layers.loc[layers['macs'] > 0, 'model'])))}"]
    notes.append(plan.describe())
    if is_imc(target):
        notes.append(
            "in-memory computing prices bit precision itself (precision-aware MAC energy does not apply)"
        )
    if settings.non_compute_ops and (layers["macs"] == 0).any():
        notes.append(
            "pooling/Add: activation-buffer read+write traffic plus adder energy (analytic, see network_cost)"
        )
    elif not settings.non_compute_ops:
        notes.append("non-compute operators (pooling, Add, activations, Q/DQ): not costed (ZigZag's zero)")
    notes.append(
        "batch norm, activations and re/dequantization: fused into the producing layer (no extra cost)"
    )
    if target.operating_point is not None:
        point = target.operating_point
        notes.append(
            f"DVFS point {point.index}: {point.clock_mhz:g} MHz at {point.voltage:g} V (reference "
            f"{point.reference_voltage:g} V): dynamic energy x{point.energy_scale:.3g}, static power "
            f"{point.static_power_w * 1e3:.3g} mW per core, paid per cycle until each exit's decision"
        )
    elif not is_imc(target):
        notes.append(
            "static (leakage) power: not modelled (the accelerator file has no codesign.dvfs section)"
        )
    schedule_tasks = (
        tuple(schedule(items, network.exit_stages, allocation, target.interconnect)) if allocation else ()
    )
    if target.cores > 1:
        used = len({task.core for task in schedule_tasks}) if schedule_tasks else 1
        notes.append(
            f"multi-core: each backbone stage and exit head runs whole on one core ({used} of {target.cores} cores "
            "used here); a layer is never split over cores, so a single network's latency is pessimistic by up "
            "to the core count against a Stream-style split (docs/stream-comparison.md)"
        )
    area = chip_area(target)
    notes.append(area.describe() if area is not None else NO_AREA)
    notes.extend(target.notes)
    if target.clock_assumed:
        notes.append(
            f"{target.accelerator_path.name} states no clock: seconds assume {target.clock_hz / 1e6:g} MHz"
        )
    load = None
    if plan.weight_load is not None:
        load = {**asdict(plan.weight_load), "latency_s": plan.weight_load.cycles / target.clock_hz}
    return CostReport(
        str(model),
        target.name,
        target.clock_hz,
        target.clock_assumed,
        layers,
        exit_frame,
        expected,
        tuple(notes),
        breakdown_table(items, target),
        load,
        tuple(asdict(core) for core in plan.cores),
        area,
        tuple((item.name, item.mapping) for item in items if item.mapping is not None),
        schedule_tasks,
    )


def layer_table(items: list[ItemCost], target: HardwareTarget) -> pd.DataFrame:
    """One row per operator: what it is, its energy (by memory role and operand too) and latency, latency
    split into ZigZag's parts."""
    rows = []
    for item in items:
        row = {k: v for k, v in asdict(item).items() if k not in ("memory", "latency_parts", "mapping")}
        row["spatial_mapping"] = item.mapping.spatial if item.mapping else "-"
        row["temporal_mapping"] = item.mapping.temporal if item.mapping else "-"
        memory: dict[str, float] = {}
        for entry in item.memory:
            where = f"{entry.level}/{entry.operand}"
            memory[where] = memory.get(where, 0.0) + entry.read_pj + entry.write_pj
        row.update(role_energies(memory, target))
        row["latency_s"] = item.latency_cycles / target.clock_hz
        parts = item.latency_parts
        for name in LATENCY_PARTS:
            row[name] = getattr(parts, name) if parts is not None else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


LATENCY_PARTS = (
    "ideal_cycles",
    "spatial_stall_cycles",
    "temporal_stall_cycles",
    "onloading_cycles",
    "offloading_cycles",
)


def breakdown_table(items: list[ItemCost], target: HardwareTarget) -> pd.DataFrame:
    """Long table of energy by operator x memory level (with its role) x operand x direction, and each
    operator's MAC energy."""
    roles = memory_roles(target)
    rows = []
    for item in items:
        words = {
            (level, operand): (reads, writes)
            for level, operand, reads, writes in (item.mapping.accesses if item.mapping else ())
        }
        for entry in item.memory:
            counts = words.get((entry.level, entry.operand), (float("nan"), float("nan")))
            for direction, energy, accesses in (
                ("read", entry.read_pj, counts[0]),
                ("write", entry.write_pj, counts[1]),
            ):
                rows.append(
                    {
                        "name": item.name,
                        "segment": item.segment,
                        "part": entry.level,
                        "role": roles.get(entry.level, "buffer"),
                        "operand": entry.operand,
                        "direction": direction,
                        "energy_pj": energy,
                        "word_accesses": accesses,
                    }
                )
        rows.append(
            {
                "name": item.name,
                "segment": item.segment,
                "part": MAC,
                "role": "compute",
                "operand": "-",
                "direction": "compute",
                "energy_pj": item.mac_energy_pj,
                "word_accesses": float("nan"),
            }
        )
    columns = ["name", "segment", "part", "role", "operand", "direction", "energy_pj", "word_accesses"]
    return pd.DataFrame(rows, columns=columns)


def _check_allocation(allocation: Allocation, stages: int, target: HardwareTarget) -> None:
    for what, cores in (("stage", allocation.stage_cores), ("head", allocation.head_cores)):
        if len(cores) != stages:
            raise CodesignError(
                f"--cores: count: expected {stages} {what} cores (one per stage of the network), got {len(cores)}"
            )
        if any(not 0 <= core < target.cores for core in cores):
            raise CodesignError(
                f"--cores: {what} cores: expected core indices 0..{target.cores - 1} "
                f"({target.accelerator_path.name} has {target.cores} core{'s' if target.cores > 1 else ''}), got {list(cores)}"
            )
    if target.cores > 1 and target.interconnect is None:
        raise CodesignError(
            f"{target.accelerator_path}: codesign.interconnect: expected one to allocate over cores"
        )


def write_cost_report(report: CostReport, out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        out / "layers.csv",
        out / "exits.csv",
        out / "breakdown.csv",
        out / "cost.json",
        out / "layers.png",
        out / "mapping.txt",
    ]
    atomic_write(paths[0], lambda tmp: report.layers.to_csv(tmp, index=False))
    atomic_write(paths[1], lambda tmp: report.exits.to_csv(tmp, index=False))
    atomic_write(paths[2], lambda tmp: report.breakdown.to_csv(tmp, index=False))
    atomic_write_text(paths[5], mapping_text(report))
    if report.schedule:
        paths += [out / "schedule.csv", out / "timeline.png"]
        frame = schedule_table(report)
        atomic_write(paths[6], lambda tmp: frame.to_csv(tmp, index=False))
        title = f"{Path(report.model).name} on {report.accelerator}: one input through every exit"
        plot_timeline(paths[7], list(report.schedule), report.clock_hz, title)
    plot_layer_energy(paths[4], report.breakdown, f"{Path(report.model).name} on {report.accelerator}")
    summary = {
        "model": report.model,
        "accelerator": report.accelerator,
        "clock_hz": report.clock_hz,
        "clock_assumed": report.clock_assumed,
        "total_energy_pj": float(report.layers["energy_pj"].sum()),
        "total_latency_cycles": float(report.layers["latency_cycles"].sum()),
        "exits": report.exits.to_dict(orient="records"),
        "expected": report.expected,
        "weight_load": report.weight_load,
        "weights_per_core": list(report.weights_per_core),
        "chip_area": asdict(report.area) if report.area is not None else None,
        "notes": list(report.notes),
    }
    atomic_write_text(paths[3], json.dumps(summary, indent=2))
    return paths


def schedule_table(report: CostReport) -> pd.DataFrame:
    """The multi-core schedule: each stage and head with its core, start and finish (cycles and us), the
    transfer that fed it, and each core's idle time."""
    idle = idle_cycles(list(report.schedule))
    us = 1e6 / report.clock_hz
    return pd.DataFrame(
        [
            {
                **asdict(task),
                "start_us": task.start_cycles * us,
                "finish_us": task.finish_cycles * us,
                "core_idle_cycles": idle[task.core],
            }
            for task in report.schedule
        ]
    )


def mapping_text(report: CostReport) -> str:
    """Every compute layer's mapping as ZigZag prints it, with its word accesses per memory and operand."""
    blocks = [f"How ZigZag mapped each layer of {report.model} on {report.accelerator}\n"]
    for name, mapping in report.mappings:
        accesses = "\n".join(
            f"  {level:<14} {operand}  reads {reads:>12,.0f}  writes {writes:>12,.0f}"
            for level, operand, reads, writes in mapping.accesses
        )
        blocks.append(
            f"{mapping.text.rstrip()}\nword accesses per memory and operand ({name}):\n{accesses}\n"
        )
    if len(blocks) == 1:
        blocks.append("no mappings recorded (layer costs cached before mappings were kept)\n")
    return "\n".join(blocks)
