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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CODESIGN = Path(sys.executable).with_name("codesign")


def timed_explore(workload: str, folder: Path, extra: list[str]) -> float:
    command = [
        str(CODESIGN),
        "explore",
        "-w",
        workload,
        "--run-dir",
        str(folder / "run"),
        "--cost-cache",
        str(folder / "cache" / "layer_costs.sqlite"),
        "--supernet-cache",
        str(folder / "cache" / "supernets"),
        "-q",
        *extra,
    ]
    print("$", shlex.join(command), flush=True)
    start = time.perf_counter()
    if subprocess.run(command, stdout=subprocess.DEVNULL).returncode != 0:  # its own one-line error is above
        sys.exit(2)
    return time.perf_counter() - start


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
        plain = timed_explore(args.workload, Path(tmp) / "plain", extra)
        baseline = timed_explore(args.workload, Path(tmp) / "baseline", [*extra, "--baseline"])
    print(f"workload {args.workload}: plain explore {plain:.1f} s, --baseline {baseline:.1f} s")
    print(f"ratio {baseline / plain:.2f} (goal <= 1.3)")


if __name__ == "__main__":
    main()
