"""An early-exit run against a static front, as `codesign explore --baseline` reports it, plus every returned
network's distance to its oracle: for comparing runs of one space that differ in one setting (exit-head bit
widths, the learned policy, the drop reference) against the same static baseline.

    .venv/bin/python benchmarks/baseline_ratios.py runs/fm-heads --static runs/fm-base/baseline

Prints the three front ratios (expected energy and latency, early exit over static, at the static front's
best test accuracy and 0.5 and 1 point below it), then per returned early-exit network: test accuracy, its
own static counterpart's, the accuracy change, expected energy over its static counterpart's and over its
oracle's; the off-chip share of each front's expected energy and its weight bytes kept and streamed; and the
issue's goal: the most accurate returned network within 1.15x of its oracle at no more
than 0.5 point below its static counterpart.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from codesign.hardware.memory import off_chip_level
from codesign.hardware.target import load_hardware
from codesign.runs.baseline import BASELINE_FOLDER, compare_fronts, summary
from codesign.runs.store import RunStore


def finals(run: Path) -> list:
    with RunStore.of_run(run) as store:
        return [final.result for final in store.finals().values()]


def off_chip_share(results: list, off_chip: str) -> tuple[float, float]:
    """(share of the front's summed expected test energy spent in the off-chip memory, median of the networks'
    own shares)."""
    shares, spent, total = [], 0.0, 0.0
    for r in results:
        stats = r.test or r.val
        energy = sum(f * e.energy_pj for f, e in zip(stats.fractions, r.exits, strict=True))
        off = sum(
            f * e.energy_by_part.get(off_chip, 0.0) for f, e in zip(stats.fractions, r.exits, strict=True)
        )
        spent, total = spent + off, total + energy
        shares.append(off / energy if energy else 0.0)
    return (spent / total if total else float("nan")), (statistics.median(shares) if shares else float("nan"))


def residency_lines(early: list, static: list, off_chip: str) -> list[str]:
    lines = []
    for name, front in (("early-exit front", early), ("static front", static)):
        summed, median = off_chip_share(front, off_chip)
        kept = [r.weight_bytes_on_chip for r in front if r.weight_bytes_on_chip is not None]
        streamed = [r.weight_bytes_streamed for r in front if r.weight_bytes_streamed is not None]
        weights = (
            f"; weights kept on chip {statistics.median(kept) / 1024:.1f} KiB, streamed "
            f"{statistics.median(streamed) / 1024:.1f} KiB (medians)"
            if kept
            else "; (store written before partial residency: no bytes recorded)"
        )
        lines.append(
            f"{name}: {100 * summed:.1f}% of the expected test energy in {off_chip} (median network "
            f"{100 * median:.1f}%){weights}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="an explore run folder (early exit)")
    parser.add_argument("--static", type=Path, default=None, help="static run folder (default: RUN/baseline)")
    args = parser.parse_args()
    early = finals(args.run)
    static = finals(args.static or args.run / BASELINE_FOLDER)
    print(f"{args.run}: {len(early)} returned networks; static front: {len(static)} networks")
    for line in summary(compare_fronts(early, static)):
        print(line)
    with RunStore.of_run(args.run) as store:
        config = store.config()
    target = load_hardware(
        config.accelerator_file, config.mapping_file, overrides=dict(config.hardware_overrides)
    )
    for line in residency_lines(early, static, off_chip_level(target).name):
        print(line)
    exits = sorted((r for r in early if r.num_exits > 1), key=lambda r: -r.test.accuracy)
    print(
        f"\n{'test acc':>8} {'static':>7} {'change':>7} {'E/static':>8} {'E/oracle':>8} {'fractions':>16}  backbone / exits"
    )
    for r in exits:
        oracle = r.expected_oracle_test.energy_pj if r.expected_oracle_test else float("nan")
        print(
            f"{100 * r.test.accuracy:7.2f}% {100 * r.static_test_accuracy:6.2f}% "
            f"{100 * (r.test.accuracy - r.static_test_accuracy):+6.2f} "
            f"{r.expected_test.energy_pj / r.static.energy_pj:8.2f} {r.expected_test.energy_pj / oracle:8.2f} "
            f"{' '.join(f'{f:.2f}' for f in r.test.fractions):>16}  {r.spec.describe()} {r.spec.describe_exits()}"
        )
    if exits:
        best = exits[0]
        ratio = best.expected_test.energy_pj / best.expected_oracle_test.energy_pj
        drop = 100 * (best.static_test_accuracy - best.test.accuracy)
        met = ratio <= 1.15 and drop <= 0.5
        print(
            f"\nmost accurate returned early-exit network: {ratio:.2f}x its oracle, {drop:+.2f} points below its "
            f"static counterpart: goal (<= 1.15x at <= 0.5 point) {'met' if met else 'not met'}"
        )
        close = [r for r in exits if r.static_test_accuracy - r.test.accuracy <= 0.005 + 1e-12]
        if close:
            nearest = min(close, key=lambda r: r.expected_test.energy_pj / r.expected_oracle_test.energy_pj)
            print(
                f"closest to its oracle within 0.5 point of its counterpart: "
                f"{nearest.expected_test.energy_pj / nearest.expected_oracle_test.energy_pj:.2f}x "
                f"({100 * nearest.test.accuracy:.2f}% test)"
            )


if __name__ == "__main__":
    main()
