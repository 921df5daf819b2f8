"""Wall time of the same `codesign explore` command with this checkout and another, one after the other on
the same machine, each with empty caches (run folder, layer-cost cache, supernets), and whether the two runs
wrote the same `candidates.csv` and `pareto.csv`.

    git worktree add /tmp/base 7efed5a
    .venv/bin/python benchmarks/explore_side_by_side.py --against /tmp/base
    .venv/bin/python benchmarks/explore_side_by_side.py --against /tmp/before --extra "--baseline"

Both trees run with this virtual environment's Python (`python -m codesign.cli.main`, the other tree first on
PYTHONPATH). `--repeats N` alternates the two N times and prints each wall time and the medians.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def timed_explore(tree: Path, folder: Path, extra: list[str]) -> float:
    command = [
        sys.executable,
        "-m",
        "codesign.cli.main",
        "explore",
        "--run-dir",
        str(folder / "run"),
        "--cost-cache",
        str(folder / "cache" / "layer_costs.sqlite"),
        "--supernet-cache",
        str(folder / "cache" / "supernets"),
        "-q",
        *extra,
    ]
    print(f"$ PYTHONPATH={tree} {shlex.join(command[1:])}", flush=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    if subprocess.run(command, env=env, cwd=tree, stdout=subprocess.DEVNULL).returncode != 0:
        sys.exit(2)  # its own one-line error is above
    return time.perf_counter() - start


def same_outputs(a: Path, b: Path) -> bool:
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in ("candidates.csv", "pareto.csv"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, help="the other checkout's root")
    parser.add_argument("--extra", default="", help="more explore options, one string (both runs)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    extra = shlex.split(args.extra)
    trees = {"this": HERE, "other": args.against.resolve()}
    seconds: dict[str, list[float]] = {name: [] for name in trees}
    identical = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            runs = {}
            for name, tree in trees.items():
                runs[name] = Path(tmp) / name
                seconds[name].append(timed_explore(tree, runs[name], extra))
            identical.append(same_outputs(runs["this"] / "run", runs["other"] / "run"))
    for name, tree in trees.items():
        times = ", ".join(f"{s:.1f}" for s in seconds[name])
        print(f"{name:>5} ({tree}): {times} s (median {statistics.median(seconds[name]):.1f} s)")
    ratio = statistics.median(seconds["this"]) / statistics.median(seconds["other"])
    print(f"this / other: {ratio:.2f}x")
    print(f"candidates.csv and pareto.csv identical: {', '.join('yes' if s else 'no' for s in identical)}")


if __name__ == "__main__":
    main()
