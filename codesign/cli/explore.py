"""`codesign explore`: search early-exit networks for an accelerator (default: the embedded digits workload)."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from codesign.cli.options import dask_address, finite_float, non_negative_int, positive_int
from codesign.machine import usable_cpus
from codesign.search.algorithms import ALGORITHMS
from codesign.search.objectives import OBJECTIVES


def add_command(sub: Any) -> None:
    ex = sub.add_parser(
        "explore", help="search early-exit networks for an accelerator (default: embedded digits)"
    )
    ex.add_argument(
        "--workload",
        "-w",
        default=None,
        help="preset name in workloads/ or a workload YAML path (default: digits)",
    )
    ex.add_argument(
        "--quick",
        action="store_true",
        help="the workload's `quick:` budget (a few minutes: a data subset, short training, a small search)",
    )
    ex.add_argument("--accelerator", "-a", help="library name in accelerators/ or an accelerator YAML path")
    ex.add_argument(
        "--mapping",
        "-m",
        help="mapping YAML (default: <accelerator>.mapping.yaml beside the accelerator file)",
    )
    ex.add_argument(
        "--run-dir", help="run folder (an existing one is resumed); default: runs/<workload>-<time>"
    )
    ex.add_argument("--runs", default="runs", help="parent folder for new runs (default: runs)")
    ex.add_argument(
        "--resume", metavar="RUN", help="continue a run folder with the workload and settings it started with"
    )
    ex.add_argument("--generations", type=positive_int, help="override search.generations")
    ex.add_argument("--population", type=positive_int, help="override search.population")
    ex.add_argument("--seed", type=non_negative_int, help="override search.seed")
    ex.add_argument("--algorithm", help=f"pymoo algorithm: {', '.join(ALGORITHMS)} (default: nsga2)")
    ex.add_argument(
        "--objectives",
        help=f"comma list: accuracy plus any of {', '.join(n for n in OBJECTIVES if n != 'accuracy')}",
    )
    ex.add_argument(
        "--surrogate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="surrogate-assisted search with the same budget of candidates (RBF/MLP/tree/GP by Kendall tau)",
    )
    ex.add_argument(
        "--min-accuracy", type=finite_float, help="constraint: validation accuracy (fraction) at least this"
    )
    ex.add_argument("--max-latency-ms", type=finite_float, help="constraint: worst-case latency budget in ms")
    ex.add_argument(
        "--max-energy-uj", type=finite_float, help="constraint: expected energy per inference in uJ"
    )
    ex.add_argument(
        "--max-exit-overhead-uj",
        type=finite_float,
        help="constraint: expected energy in exit heads the input went past, per inference, in uJ",
    )
    ex.add_argument(
        "--weights-on-chip", action="store_true", help="constraint: all weights fit the on-chip memories"
    )
    ex.add_argument(
        "--no-constraints",
        action="store_true",
        help="drop the workload's constraints (constraint options given with it still apply)",
    )
    ex.add_argument("--epochs", type=positive_int, help="override training.epochs")
    ex.add_argument(
        "--baseline",
        action="store_true",
        help="also search the same space with every exit off and compare the fronts (RUN/baseline, baseline.csv)",
    )
    ex.add_argument(
        "--static",
        action="store_true",
        help="static networks only (every early exit off): the baseline to compare an EENN front with",
    )
    ex.add_argument("--jobs", "-j", type=positive_int, default=usable_cpus(), help="ZigZag worker processes")
    ex.add_argument(
        "--cost-cache", help="layer-cost cache file (default: ~/.cache/codesign/layer_costs.sqlite)"
    )
    ex.add_argument(
        "--supernet-cache",
        help="folder of trained supernets, reused by every run of the same space (default: "
        "~/.cache/codesign/supernets; independent of --cost-cache)",
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
    ex.add_argument("--threads", type=positive_int, default=1, help="PyTorch intra-op threads (default 1)")
    ex.add_argument(
        "--device",
        help="where networks train and run: auto (CUDA when present), cpu, cuda, cuda:N "
        "(default: the workload's training.device, else auto)",
    )
    ex.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="evaluate candidates in this many local processes, one PyTorch thread each; 1: in this process "
        f"(default: one per CPU core this process may use, at most one per {CANDIDATES_PER_WORKER} candidates of the "
        "search's budget)",
    )
    ex.add_argument(
        "--dask",
        metavar="ADDRESS",
        type=dask_address,
        help="evaluate candidates on a Dask cluster: scheduler address (tcp://host:8786) or local:N",
    )
    ex.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from codesign.config.search import parse_search
    from codesign.config.workload import load_workload
    from codesign.hardware.overrides import parse_override
    from codesign.runs.explore import explore
    from codesign.runs.setup import stored_workload
    from codesign.runs.store import RunStore
    from codesign.search.settings import Constraints

    if args.resume:
        with RunStore.of_run(args.resume) as store:
            workload = stored_workload(store, args.workload, report=print)
        args.run_dir = args.resume
    else:
        workload = load_workload(args.workload or "digits", quick=args.quick)
    if args.accelerator:  # its own mapping unless one is given with it
        workload = replace(workload, accelerator=args.accelerator, mapping=None)
    if args.mapping:
        workload = replace(workload, mapping=str(Path(args.mapping).resolve()))
    if args.hw:
        from codesign.errors import CodesignError
        from codesign.runs.setup import overridden_target, workload_target

        given = dict(parse_override(text) for text in args.hw)
        try:
            workload_target(workload)
        except CodesignError:
            pass  # the workload's own fault: set-up names it, unless --hw replaces the value at fault
        else:
            overridden_target(workload, dict(workload.hardware_overrides), given, ("--hw: ", "--hw: "))
        workload = replace(
            workload, hardware_overrides=tuple({**dict(workload.hardware_overrides), **given}.items())
        )
    search = workload.search
    if args.no_constraints:
        search = replace(search, constraints=Constraints())
    workload = replace(workload, search=parse_search("command line", _search_overrides(args), search))
    if args.epochs is not None:
        workload = replace(workload, training=replace(workload.training, epochs=args.epochs))
    if args.static:
        workload = replace(workload, space=replace(workload.space, early_exits=False))
    if args.device is not None:
        from codesign.network.device import resolve_device

        resolve_device(args.device, "--device")
        workload = replace(workload, device=args.device)
    import torch

    # Small networks gain little from intra-op threads, and OpenMP threads competing with the ZigZag
    # workers (or anything else on the machine) slow PyTorch down by an order of magnitude.
    torch.set_num_threads(args.threads)
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
        supernet_dir=Path(args.supernet_cache) if args.supernet_cache else None,
        progress=not args.quiet,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        workers=args.workers or auto_workers(workload.search.budget),
        dask=args.dask,
    )
    return 0


# A worker process takes a few seconds to start (imports, data, supernet): worth it from this many candidates on
CANDIDATES_PER_WORKER = 16


def auto_workers(budget: int) -> int:
    """Worker processes for a search of `budget` candidates when --workers is not given."""
    return max(1, min(usable_cpus(), budget // CANDIDATES_PER_WORKER))


def _search_overrides(args: argparse.Namespace) -> dict:
    """The `search:` fields given on the command line, validated like the workload file's."""
    data: dict = {
        key: getattr(args, key)
        for key in ("population", "generations", "seed", "algorithm")
        if getattr(args, key) is not None
    }
    if args.objectives is not None:
        data["objectives"] = [name.strip() for name in args.objectives.split(",") if name.strip()]
    constraints = {
        key: getattr(args, key)
        for key in ("min_accuracy", "max_latency_ms", "max_energy_uj", "max_exit_overhead_uj")
        if getattr(args, key) is not None
    }
    if args.weights_on_chip:
        constraints["weights_on_chip"] = True
    if constraints:
        data["constraints"] = constraints
    if args.surrogate is not None:
        data["surrogate"] = args.surrogate
    if args.baseline:
        data["baseline"] = "static"
    return data
