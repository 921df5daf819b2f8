"""A run's plots (PNG): the Pareto set against every candidate, per-exit energy, hypervolume per generation."""

from __future__ import annotations

from pathlib import Path

from codesign.cost.plots import part_colors
from codesign.evaluation.result import CandidateResult
from codesign.files import atomic_write


def plot_pareto(
    path: Path,
    front: list[CandidateResult],
    results: list[CandidateResult],
    accelerator: str,
    static_front: list[CandidateResult] = (),  # type: ignore[assignment]
) -> None:
    """Test accuracy against expected energy and latency: every evaluated candidate, the returned networks
    (by number of exits and accelerator), each one's own static counterpart, and the static baseline's
    returned networks when the run has one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    colors = {1: "tab:gray", 2: "tab:blue", 3: "tab:orange", 4: "tab:green", 5: "tab:red"}
    for ax, (attr, label, scale) in zip(
        axes,
        [
            ("energy_pj", "expected energy per inference [nJ]", 1e-3),
            ("latency_cycles", "expected latency [cycles]", 1.0),
        ],
        strict=True,
    ):
        tested = [r for r in results if r.test is not None and r.expected_test is not None]
        ax.scatter(
            [getattr(r.expected_test, attr) * scale for r in tested],
            [100 * r.test.accuracy for r in tested],
            s=12,
            color="lightgray",
            label="evaluated candidates",
            zorder=1,
        )
        for r in front:
            x_ee = getattr(r.expected_test, attr) * scale
            x_static = getattr(r.static, attr) * scale
            ax.plot(
                [x_static, x_ee],
                [100 * r.static_test_accuracy, 100 * r.test.accuracy],
                color="silver",
                lw=0.8,
                zorder=2,
            )
            ax.scatter(
                [x_static],
                [100 * r.static_test_accuracy],
                marker="s",
                facecolors="none",
                edgecolors="black",
                s=28,
                zorder=3,
            )
        accelerators = sorted({r.accelerator for r in front})
        markers = dict(zip(accelerators, "o^DvPX*<>", strict=False))
        for n in sorted({r.num_exits for r in front}):
            for name in accelerators:
                members = [r for r in front if r.num_exits == n and r.accelerator == name]
                ax.scatter(
                    [getattr(r.expected_test, attr) * scale for r in members],
                    [100 * r.test.accuracy for r in members],
                    s=40,
                    marker=markers.get(name, "o"),
                    color=colors.get(n, "tab:purple"),
                    edgecolors="black",
                    linewidths=0.5,
                    zorder=4,
                )
            ax.scatter(
                [],
                [],
                s=40,
                color=colors.get(n, "tab:purple"),
                label=f"Pareto, {n} exit{'s' if n > 1 else ''}",
            )
        if len(accelerators) > 1:
            for name in accelerators:
                ax.scatter(
                    [], [], marker=markers.get(name, "o"), color="white", edgecolors="black", label=name
                )
        ax.scatter(
            [], [], marker="s", facecolors="none", edgecolors="black", label="same network, no early exit"
        )
        baseline = sorted(
            (r for r in static_front if r.test is not None and r.expected_test is not None),
            key=lambda r: getattr(r.expected_test, attr),
        )
        if baseline:
            ax.step(
                [getattr(r.expected_test, attr) * scale for r in baseline],
                [100 * r.test.accuracy for r in baseline],
                where="post",
                color="black",
                lw=0.8,
                ls=":",
                zorder=2,
            )
            ax.scatter(
                [getattr(r.expected_test, attr) * scale for r in baseline],
                [100 * r.test.accuracy for r in baseline],
                marker="X",
                s=45,
                color="black",
                label="static baseline (search with exits off)",
                zorder=5,
            )
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy [%]")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"Early-exit networks on {accelerator}: Pareto set chosen on validation, figures on the test split"
    )
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def plot_hypervolume(path: Path, volumes: list[float], objectives: tuple[str, ...]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(range(1, len(volumes) + 1), volumes, marker="o")
    ax.set_xlabel("generation (surrogate search: round)")
    ax.set_ylabel("hypervolume (normalised, ref. 1.1)")
    ax.set_title(f"Search progress on {', '.join(objectives)} (validation)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


def plot_exit_breakdown(path: Path, front: list[CandidateResult]) -> None:
    """Per-exit cumulative energy of every returned network (most accurate first), stacked by where it is
    spent (each memory level, MAC, interconnect, static), with the share of inputs leaving at each exit,
    the expected energy and the static counterpart's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    chosen = sorted(front, key=lambda r: -r.reported[0].accuracy)
    parts = list(dict.fromkeys(part for r in chosen for e in r.exits for part in e.energy_by_part))
    colors = part_colors(parts)
    fig, ax = plt.subplots(figsize=(min(40, max(6, 1.1 * len(chosen) + 2)) + 3, 4.6))
    width = 0.8 / max(len(e.exits) for e in chosen) if chosen else 0.8
    for i, r in enumerate(chosen):
        stats, expected, _ = r.reported
        for k, (cost, fraction) in enumerate(zip(r.exits, stats.fractions, strict=True)):
            x = i + (k - (len(r.exits) - 1) / 2) * width
            split = cost.energy_by_part or {"energy": cost.energy_pj}
            bottom = 0.0
            for part, energy in split.items():
                ax.bar(x, energy / 1e3, width=width * 0.9, bottom=bottom, color=colors.get(part, "tab:gray"))
                bottom += energy / 1e3
            ax.text(x, cost.energy_pj / 1e3, f"{100 * fraction:.0f}%", ha="center", va="bottom", fontsize=7)
        ax.plot([i - 0.4, i + 0.4], [expected.energy_pj / 1e3] * 2, color="red", lw=1.5)
        ax.plot([i - 0.4, i + 0.4], [r.static.energy_pj / 1e3] * 2, color="black", lw=1, ls="--")
    handles = [Patch(facecolor=colors.get(part, "tab:gray"), label=part) for part in parts]
    handles += [
        Line2D([], [], color="red", lw=1.5, label="expected (weighted by the % leaving at each exit)"),
        Line2D([], [], color="black", lw=1, ls="--", label="static counterpart (exits off)"),
    ]
    ax.set_xticks(range(len(chosen)))
    ax.set_xticklabels(
        [f"{100 * r.reported[0].accuracy:.1f}%\n{r.num_exits} exits" for r in chosen], fontsize=8
    )
    ax.set_ylabel("energy to reach and take the exit [nJ]")
    ax.set_title(
        f"Energy to take each exit of the {len(chosen)} returned networks,\nby where it is spent "
        "(% = test inputs leaving there)",
        fontsize=9,
    )
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)
