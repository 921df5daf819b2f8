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
    from codesign.config.workload import Constraints, load_workload, parse_search
    from codesign.hardware.target import parse_override
    from codesign.runs.explore import explore, stored_workload

    if args.resume:
        workload = stored_workload(Path(args.resume), args.workload)
        args.run_dir = args.resume
    else:
        workload = load_workload(args.workload or "digits")
    if args.accelerator:
        workload = replace(workload, accelerator=args.accelerator)
    if args.hw:
        overrides = dict(workload.hardware_overrides)
        overrides.update(parse_override(text) for text in args.hw)
        workload = replace(workload, hardware_overrides=tuple(overrides.items()))
    search = workload.search
    if args.no_constraints:
        search = replace(search, constraints=Constraints())
    workload = replace(workload, search=parse_search("command line", _search_overrides(args), search))
    if args.epochs is not None:
        workload = replace(workload, training=replace(workload.training, epochs=args.epochs))
    if args.static:
        workload = replace(workload, space=replace(workload.space, early_exits=False))
    import torch

    # Small networks gain little from intra-op threads, and OpenMP threads competing with the ZigZag
    # workers (or anything else on the machine) slow PyTorch down by an order of magnitude.
    torch.set_num_threads(max(1, args.threads))
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
        data_dir=Path(args.data_dir) if args.data_dir else None,
        workers=args.workers,
        dask=args.dask,
    )
    return 0


def _search_overrides(args: argparse.Namespace) -> dict:
    """The `search:` fields given on the command line, validated like the workload file's."""
    data: dict = {
        key: getattr(args, key)
        for key in ("population", "generations", "seed", "algorithm")
        if getattr(args, key) is not None
    }
    if args.objectives:
        data["objectives"] = [name.strip() for name in args.objectives.split(",")]
    constraints = {
        key: getattr(args, key)
        for key in ("min_accuracy", "max_latency_ms", "max_energy_uj")
        if getattr(args, key) is not None
    }
    if args.weights_on_chip:
        constraints["weights_on_chip"] = True
    if constraints:
        data["constraints"] = constraints
    if args.surrogate is not None:
        data["surrogate"] = args.surrogate
    return data


def _cost(args: argparse.Namespace) -> int:
    from codesign.cost.exits import Allocation
    from codesign.cost.network import CostModelSettings
    from codesign.cost.report import cost_onnx, format_cost_report, parse_fractions, write_cost_report
    from codesign.cost.zigzag import CostOptions
    from codesign.hardware.target import parse_override
    from codesign.runs.explore import default_cache_path

    allocation = None
    if args.cores:
        parts = [int(c) for c in args.cores.split(",")]
        half = len(parts) // 2
        if len(parts) % 2:
            raise CodesignError(
                f"--cores {args.cores!r}: value: expected stage cores then head cores, e.g. 0,0,0,1,1,1"
            )
        allocation = Allocation(tuple(parts[:half]), tuple(parts[half:]))
    report = cost_onnx(
        args.model,
        args.accelerator,
        exit_fractions=parse_fractions(args.exit_fractions) if args.exit_fractions else None,
        options=CostOptions(opt=args.opt, lpf_limit=args.lpf_limit),
        settings=CostModelSettings(
            precision_aware_mac=not args.zigzag_only, non_compute_ops=not args.zigzag_only
        ),
        overrides=dict(parse_override(text) for text in args.hw),
        allocation=allocation,
        cache_path=Path(args.cost_cache) if args.cost_cache else default_cache_path(),
        jobs=args.jobs,
    )
    print(format_cost_report(report))
    out = (
        Path(args.out)
        if args.out
        else Path(args.model).with_suffix("").with_name(Path(args.model).stem + "_cost")
    )
    paths = write_cost_report(report, out)
    print(f"\nwrote {', '.join(str(p) for p in paths)}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from codesign.errors import CodesignError
    from codesign.runs.explore import write_outputs
    from codesign.runs.store import RunStore

    run_dir = Path(args.run)
    if not (run_dir / "run.db").is_file():
        raise CodesignError(f"{run_dir}: run.db: expected a run folder written by `codesign explore`")
    store = RunStore(run_dir / "run.db")
    write_outputs(run_dir, store)
    store.close()
    return 0


def _accelerators(args: argparse.Namespace) -> int:
    import pandas as pd

    from codesign.hardware.target import LIBRARY_DIR, key_figures, library_names, load_hardware

    rows = [key_figures(load_hardware(name)) for name in library_names()]
    frame = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(frame.drop(columns=["description"]).to_string(index=False))
    print()
    for row in rows:
        print(f"{row['name']:>20}: {row['description']}")
    print(f"\nlibrary: {LIBRARY_DIR} (on-chip KiB per operand excludes the outermost memory level)")
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
        "--workload",
        "-w",
        default=None,
        help="preset name in workloads/ or a workload YAML path (default: digits)",
    )
    ex.add_argument("--accelerator", "-a", help="library name in accelerators/ or an accelerator YAML path")
    ex.add_argument(
        "--run-dir", help="run folder (an existing one is resumed); default: runs/<workload>-<time>"
    )
    ex.add_argument("--runs", default="runs", help="parent folder for new runs (default: runs)")
    ex.add_argument(
        "--resume", metavar="RUN", help="continue a run folder with the workload and settings it started with"
    )
    ex.add_argument("--generations", type=int, help="override search.generations")
    ex.add_argument("--population", type=int, help="override search.population")
    ex.add_argument("--seed", type=int, help="override search.seed")
    ex.add_argument(
        "--algorithm", help="pymoo algorithm: nsga2 (default), nsga3, unsga3, ctaea, smsemoa, spea2"
    )
    ex.add_argument(
        "--objectives", help="comma list: accuracy plus energy, latency, edp, worst_latency, size"
    )
    ex.add_argument(
        "--surrogate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="surrogate-assisted search with the same budget of candidates (RBF/MLP/tree/GP by Kendall tau)",
    )
    ex.add_argument(
        "--min-accuracy", type=float, help="constraint: validation accuracy (fraction) at least this"
    )
    ex.add_argument("--max-latency-ms", type=float, help="constraint: worst-case latency budget in ms")
    ex.add_argument("--max-energy-uj", type=float, help="constraint: expected energy per inference in uJ")
    ex.add_argument(
        "--weights-on-chip", action="store_true", help="constraint: all weights fit the on-chip memories"
    )
    ex.add_argument(
        "--no-constraints",
        action="store_true",
        help="drop the workload's constraints (constraint options given with it still apply)",
    )
    ex.add_argument("--epochs", type=int, help="override training.epochs")
    ex.add_argument(
        "--static",
        action="store_true",
        help="static networks only (every early exit off): the baseline to compare an EENN front with",
    )
    ex.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="ZigZag worker processes")
    ex.add_argument(
        "--cost-cache", help="layer-cost cache file (default: ~/.cache/codesign/layer_costs.sqlite)"
    )
    ex.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    ex.add_argument(
        "--hw",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override an accelerator field, e.g. operational_array.sizes=[16,16,4,4] (repeatable)",
    )
    ex.add_argument(
        "--data-dir", help="folder with the dataset files (Fashion-MNIST IDX, CIFAR batches, SVHN .mat)"
    )
    ex.add_argument("--threads", type=int, default=1, help="PyTorch intra-op threads (default 1)")
    ex.add_argument("--workers", type=int, default=1, help="evaluate candidates in this many local processes")
    ex.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="evaluate candidates on a Dask cluster: scheduler address (tcp://host:8786) or local:N",
    )
    ex.set_defaults(handler=_explore)

    co = sub.add_parser("cost", help="per-layer and per-exit cost of an ONNX network on an accelerator")
    co.add_argument(
        "model", help="ONNX file (Brevitas QCDQ or float); each graph output is an exit, earliest first"
    )
    co.add_argument(
        "--accelerator", "-a", default="edge_tpu_like", help="library name or accelerator YAML path"
    )
    co.add_argument("--exit-fractions", help="fraction of inputs leaving at each exit, e.g. 0.6,0.3,0.1")
    co.add_argument(
        "--hw", action="append", default=[], metavar="FIELD=VALUE", help="override an accelerator field"
    )
    co.add_argument(
        "--cores", help="multi-core allocation: core of each stage, then of each head, e.g. 0,0,0,1,1,1"
    )
    co.add_argument(
        "--opt", default="EDP", choices=["energy", "latency", "EDP"], help="ZigZag mapping criterion"
    )
    co.add_argument(
        "--lpf-limit", type=int, default=6, help="ZigZag LOMA loop-prime-factor limit (default 6)"
    )
    co.add_argument(
        "--zigzag-only",
        action="store_true",
        help="plain ZigZag numbers: no precision-aware MAC energy, no cost for pooling/Add",
    )
    co.add_argument("--out", help="folder for layers.csv, exits.csv, cost.json (default: <model>_cost/)")
    co.add_argument("--cost-cache", help="layer-cost cache file")
    co.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="ZigZag worker processes")
    co.set_defaults(handler=_cost)

    rp = sub.add_parser("report", help="rebuild a run's tables and plots from its run store")
    rp.add_argument("run", help="run folder (contains run.db)")
    rp.set_defaults(handler=_report)

    from codesign.deploy.runtime import add_infer_command

    add_infer_command(sub)

    ac = sub.add_parser("accelerators", help="list the accelerator library with key figures")
    ac.set_defaults(handler=_accelerators)
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
