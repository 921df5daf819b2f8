"""Wall time of `codesign explore --baseline` against a plain explore of the same workload, fresh caches.

    .venv/bin/python benchmarks/baseline_walltime.py -w digits
    .venv/bin/python benchmarks/baseline_walltime.py -w fashion_mnist --extra "--workers 2 -j 1"

Runs the two commands one after the other, each in its own temporary run folder with its own empty layer-cost
and supernet caches (so each trains its supernet), and prints both wall times and their ratio (goal: <= 1.3;
the static search reuses the early-exit search's supernet and adds only its own candidates).
"""

from __future__ import annotations

import argparse
import shlex
import tempfile
from pathlib import Path

from explore_side_by_side import HERE, timed_explore  # benchmarks/ is on the path when a script runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workload", default="digits")
    parser.add_argument("--extra", default="", help="more explore options, one string")
    args = parser.parse_args()
    try:
        extra = shlex.split(args.extra)
    except ValueError as exc:
        parser.error(f"--extra: expected explore options as one shell string ({exc})")
    with tempfile.TemporaryDirectory(prefix="codesign-walltime-") as tmp:
        plain = timed_explore(HERE, Path(tmp) / "plain", ["-w", args.workload, *extra])
        baseline = timed_explore(HERE, Path(tmp) / "baseline", ["-w", args.workload, *extra, "--baseline"])
    print(f"workload {args.workload}: plain explore {plain:.1f} s, --baseline {baseline:.1f} s")
    print(f"ratio {baseline / plain:.2f} (goal <= 1.3)")


if __name__ == "__main__":
    main()
