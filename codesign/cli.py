"""Command line: `codesign explore` (and friends)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from codesign.errors import CodesignError


def _explore(args: argparse.Namespace) -> int:
    from codesign.explore import explore
    from codesign.workload import load_workload

    workload = load_workload(args.workload)
    if args.accelerator:
        workload = replace(workload, accelerator=args.accelerator)
    search = workload.search
    if args.generations is not None:
        search = replace(search, generations=args.generations)
    if args.population is not None:
        search = replace(search, population=args.population)
    if args.seed is not None:
        search = replace(search, seed=args.seed)
    workload = replace(workload, search=search)
    if args.epochs is not None:
        workload = replace(workload, training=replace(workload.training, epochs=args.epochs))
    run_dir = (
        Path(args.run_dir)
        if args.run_dir
        else Path(args.runs) / f"{workload.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    explore(
        workload,
        run_dir,
        jobs=args.jobs,
        cache_path=Path(args.cost_cache) if args.cost_cache else None,
        progress=not args.quiet,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codesign", description="Co-design quantized early-exit networks and edge accelerators."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser(
        "explore", help="search early-exit networks for an accelerator (default: embedded digits)"
    )
    ex.add_argument(
        "--workload", "-w", default="digits", help="preset name in workloads/ or a workload YAML path"
    )
    ex.add_argument("--accelerator", "-a", help="library name in accelerators/ or an accelerator YAML path")
    ex.add_argument(
        "--run-dir", help="run folder (an existing one is resumed); default: runs/<workload>-<time>"
    )
    ex.add_argument("--runs", default="runs", help="parent folder for new runs (default: runs)")
    ex.add_argument("--generations", type=int, help="override search.generations")
    ex.add_argument("--population", type=int, help="override search.population")
    ex.add_argument("--seed", type=int, help="override search.seed")
    ex.add_argument("--epochs", type=int, help="override training.epochs")
    ex.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="ZigZag worker processes")
    ex.add_argument(
        "--cost-cache", help="layer-cost cache file (default: ~/.cache/codesign/layer_costs.sqlite)"
    )
    ex.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    ex.set_defaults(handler=_explore)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except CodesignError as exc:
        print(f"codesign: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codesign: interrupted; finished evaluations are kept in the run store", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
