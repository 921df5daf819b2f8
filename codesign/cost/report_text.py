"""A cost report as text and tables for the terminal: the per-exit summary, the multi-core schedule, and
several networks (or accelerators) side by side."""

from __future__ import annotations

import pandas as pd

from codesign.cost.exits import MAC, idle_cycles
from codesign.cost.report import CostReport
from codesign.cost.roles import ROLE_COLUMNS


def format_schedule(report: CostReport) -> list[str]:
    if not report.schedule:
        return []
    lines = ["", "schedule of one input through every exit (cycles from its arrival):"]
    for task in sorted(report.schedule, key=lambda t: (t.core, t.start_cycles)):
        fed = f", after a {task.transfer_cycles:.0f}-cycle transfer" if task.transfer_cycles else ""
        lines.append(
            f"  core {task.core}: {task.segment:<7} {task.start_cycles:>10.0f} -> {task.finish_cycles:>10.0f}{fed}"
        )
    idle = idle_cycles(list(report.schedule))
    lines.append("  idle: " + ", ".join(f"core {core} {cycles:.0f} cycles" for core, cycles in idle.items()))
    return lines


def comparison_table(reports: list[CostReport]) -> pd.DataFrame:
    """One row per accelerator and exit (and its expected cost, when exit fractions were given), with the
    columns every accelerator shares: energy and latency, energy by memory role and operand, chip area."""
    rows = []
    for report in reports:
        area = report.area.total if report.area is not None else float("nan")
        for record in report.exits.to_dict(orient="records"):
            rows.append(
                {
                    "accelerator": report.accelerator,
                    "exit": record["exit"],
                    "after_stage": record["after_stage"],
                    "fraction": record.get("fraction", float("nan")),
                    "energy_pj": record["energy_pj"],
                    "latency_cycles": record["latency_cycles"],
                    "latency_s": record["latency_s"],
                    "macs": record["macs"],
                    "energy_MAC_pj": record.get(f"energy_{MAC}_pj", 0.0),
                    **{column: record[column] for column in ROLE_COLUMNS},
                    "chip_area": area,
                }
            )
        if report.expected is not None:
            e = report.expected
            rows.append(
                {
                    "accelerator": report.accelerator,
                    "exit": "expected",
                    "energy_pj": e["energy_pj"],
                    "latency_cycles": e["latency_cycles"],
                    "latency_s": e["latency_s"],
                    "macs": e["macs"],
                    "chip_area": area,
                }
            )
    return pd.DataFrame(rows)


def format_comparison(table: pd.DataFrame) -> str:
    shown = table[
        ["accelerator", "exit", "energy_pj", "latency_s", "macs", "energy_off_chip_pj", "chip_area"]
    ]
    lines = [shown.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-")]
    lines.append(
        "chip_area: from each accelerator file's area fields ('-': the file states none); every energy_* column "
        "of compare.csv means the same on every accelerator (memory names are in each folder's breakdown.csv)"
    )
    return "\n".join(lines)


def format_cost_report(report: CostReport, max_layers: int = 60) -> str:
    layer_view = report.layers[
        [
            "segment",
            "op_type",
            "name",
            "macs",
            "weight_bits",
            "act_bits",
            "energy_pj",
            "latency_cycles",
            "utilization",
            "weights_at",
            "activations_at",
        ]
    ].copy()
    layer_view["name"] = layer_view["name"].str.slice(-38)
    lines = [f"{report.model} on {report.accelerator} ({report.clock_hz / 1e6:g} MHz)", ""]
    lines.append(layer_view.head(max_layers).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if len(layer_view) > max_layers:
        lines.append(f"... {len(layer_view) - max_layers} more rows in layers.csv")
    lines += ["", report.exits.to_string(index=False, float_format=lambda v: f"{v:.4g}")]
    if report.expected:
        e = report.expected
        lines += [
            "",
            f"expected per inference: {e['energy_pj'] / 1e3:.1f} nJ, {e['latency_cycles']:.0f} cycles "
            f"({e['latency_s'] * 1e6:.2f} us), EDP {e['edp_j_s']:.3g} J*s, worst case {e['worst_latency_cycles']:.0f} cycles; "
            f"the same backbone without its exit heads {e['static_energy_pj'] / 1e3:.1f} nJ, "
            f"{e['static_latency_cycles']:.0f} cycles",
        ]
    lines += format_schedule(report)
    lines += ["", *(f"note: {n}" for n in report.notes)]
    return "\n".join(lines)
