"""Where a network's energy goes, as a picture: per-layer energy stacked by memory level and MAC."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from codesign.files import atomic_write


def part_colors(parts: list[str]) -> dict[str, str]:
    """One colour per energy part, MAC always the same (shared with the run's per-exit plots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cycle = plt.cm.tab20.colors
    others = [p for p in parts if p != "MAC"]
    colors = {part: matplotlib.colors.to_hex(cycle[(2 * i) % 20]) for i, part in enumerate(others)}
    colors["MAC"] = "#222222"
    return colors


def plot_layer_energy(path: Path, breakdown: pd.DataFrame, title: str) -> None:
    """Stacked bars, one per operator in network order: its energy by memory level (reads and writes of every
    operand together) and MAC energy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_part = breakdown.pivot_table(
        index="name", columns="part", values="energy_pj", aggfunc="sum", sort=False
    )
    by_part = by_part.fillna(0.0) / 1e3
    colors = part_colors(list(by_part.columns))
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(by_part) + 2), 4.2))
    bottom = pd.Series(0.0, index=by_part.index)
    positions = range(len(by_part))
    for part in by_part.columns:
        ax.bar(positions, by_part[part], bottom=bottom, color=colors[part], label=part, width=0.8)
        bottom += by_part[part]
    labels = [str(name)[-28:] for name in by_part.index]
    ax.set_xticks(list(positions))
    ax.set_xticklabels(labels, rotation=75, ha="right", fontsize=7)
    ax.set_ylabel("energy per inference [nJ]")
    ax.set_title(f"{title}: energy per layer by memory level and MAC", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def plot_timeline(path: Path, schedule: list, clock_hz: float, title: str) -> None:  # list[ScheduledTask]
    """One row per core: when each stage and exit head runs (microseconds from the input's arrival), the
    interconnect transfers that feed tasks on another core hatched before them, idle time left blank."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = 1e6 / clock_hz
    cores = sorted({task.core for task in schedule})
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.6 * len(cores)))
    for task in schedule:
        row = cores.index(task.core)
        color = "#4c72b0" if task.segment.startswith("stage") else "#dd8452"
        width = (task.finish_cycles - task.start_cycles) * scale
        ax.barh(row, width, left=task.start_cycles * scale, color=color, edgecolor="black", height=0.6)
        ax.text(
            (task.start_cycles * scale) + width / 2, row, task.segment, ha="center", va="center", fontsize=8
        )
        if task.transfer_cycles:
            ax.barh(
                row,
                task.transfer_cycles * scale,
                left=(task.start_cycles - task.transfer_cycles) * scale,
                color="white",
                edgecolor="grey",
                hatch="///",
                height=0.3,
            )
    ax.set_yticks(range(len(cores)), [f"core {core}" for core in cores])
    ax.invert_yaxis()
    ax.set_xlabel("time from the input's arrival [us]")
    ax.set_title(
        f"{title}\nblue: backbone stages, orange: exit heads, hatched: transfers between cores", fontsize=9
    )
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
