"""`codesign cost MODEL.onnx`: per-layer and per-exit cost of an ONNX network on an accelerator."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codesign.cli.options import parse_fractions, parse_numbers, positive_int
from codesign.cost.settings import RESIDENCY_MODES, ZIGZAG_CRITERIA, CostModelSettings, CostOptions
from codesign.errors import CodesignError
from codesign.machine import usable_cpus

if TYPE_CHECKING:
    from codesign.cost.exits import Allocation


def add_command(sub: Any) -> None:
    co = sub.add_parser("cost", help="per-layer and per-exit cost of an ONNX network on an accelerator")
    co.add_argument(
        "model", help="ONNX file (Brevitas QCDQ or float); each graph output is an exit, earliest first"
    )
    co.add_argument(
        "--accelerator",
        "-a",
        help="library name or accelerator YAML path (default: the run's for a network a run returned, "
        "else edge_tpu_like)",
    )
    co.add_argument("--exit-fractions", help="fraction of inputs leaving at each exit, e.g. 0.6,0.3,0.1")
    co.add_argument(
        "--mapping",
        "-m",
        help="mapping YAML (default: <accelerator>.mapping.yaml beside the accelerator file)",
    )
    co.add_argument(
        "--hw", action="append", default=[], metavar="FIELD=VALUE", help="override an accelerator field"
    )
    co.add_argument(
        "--cores", help="multi-core allocation: core of each stage, then of each head, e.g. 0,0,0,1,1,1"
    )
    co.add_argument(
        "--opt", choices=list(ZIGZAG_CRITERIA), help="ZigZag mapping criterion (default: the run's, else EDP)"
    )
    co.add_argument(
        "--lpf-limit",
        type=positive_int,
        help="ZigZag LOMA loop-prime-factor limit (default: the run's, else 6)",
    )
    co.add_argument(
        "--residency",
        choices=list(RESIDENCY_MODES),
        help="auto (default): as many weights as fit stay on chip, the rest streams every inference; activations "
        "stay on chip where everything live fits; offchip: ZigZag's assumption (implied by --zigzag-only)",
    )
    co.add_argument(
        "--zigzag-only",
        action="store_true",
        help="plain ZigZag numbers: no precision-aware MAC energy, no cost for pooling/Add, operands off chip",
    )
    co.add_argument(
        "--input-shape", help="sizes after the batch of an input exported with symbolic ones, e.g. 1,28,28"
    )
    co.add_argument("--out", help="folder for layers.csv, exits.csv, cost.json (default: <model>_cost/)")
    co.add_argument("--cost-cache", help="layer-cost cache file (default: the run's, else the user cache)")
    co.add_argument("--jobs", "-j", type=positive_int, default=usable_cpus(), help="ZigZag worker processes")
    co.set_defaults(handler=run)


@dataclass(frozen=True)
class RunDefaults:
    """What a run used for one of the networks it returned (`RUN/onnx/KEY.onnx`): the defaults of
    `codesign cost` on that file, so that costing it again reads the run's layer costs from the cache."""

    run_dir: Path
    key: str
    accelerator: str
    mapping: str
    overrides: dict[str, Any]
    allocation: Allocation | None
    options: CostOptions
    settings: CostModelSettings
    exit_fractions: tuple[float, ...] | None  # on the test split
    residency_fractions: tuple[float, ...] | None  # on validation, as the run planned residency
    cache_path: Path | None


def run_defaults(model: Path) -> RunDefaults | None:
    """The settings of the run that returned `model`, if it is one of a run folder's `onnx/` files."""
    from codesign.cost.exits import Allocation
    from codesign.runs.store import STORE_NAME, RunStore

    run_dir = model.resolve().parent.parent
    if model.resolve().parent.name != "onnx" or not (run_dir / STORE_NAME).is_file():
        return None
    with RunStore.of_run(run_dir) as store:
        config = store.config()
        record = store.final_of_onnx(f"onnx/{model.name}")
        cache = store.cost_cache()
    if config is None or record is None:
        return None
    result = record.result
    spec = result.spec
    return RunDefaults(
        run_dir=run_dir,
        key=spec.key(),
        accelerator=config.accelerator_file,
        mapping=config.mapping_file,
        overrides={**config.hardware_overrides, **spec.hardware_overrides()},
        allocation=Allocation(spec.stage_cores, spec.head_cores) if spec.stage_cores else None,
        options=config.cost,
        settings=config.cost_model,
        exit_fractions=result.test.fractions if result.test is not None else None,
        residency_fractions=result.val.fractions,
        cache_path=Path(cache) if cache else None,
    )


def run(args: argparse.Namespace) -> int:
    from codesign.cost.cache import default_cache_path
    from codesign.cost.exits import Allocation
    from codesign.cost.report import cost_onnx, write_cost_report
    from codesign.cost.report_text import comparison_table, format_comparison, format_cost_report
    from codesign.files import atomic_write
    from codesign.hardware.overrides import parse_override
    from codesign.hardware.target import load_overridden

    if args.zigzag_only and args.residency == "auto":
        raise CodesignError(
            "--residency auto: expected no --residency (or offchip) with --zigzag-only, which keeps every operand "
            "off chip as plain ZigZag does; drop --zigzag-only to cost residency"
        )
    allocation = None
    if args.cores:
        example = "stage cores then head cores, e.g. 0,0,0,1,1,1"
        parts = parse_numbers(args.cores, "--cores", f"integers: {example}", int)
        if len(parts) % 2:
            raise CodesignError(f"--cores {args.cores!r}: value: expected {example}")
        half = len(parts) // 2
        allocation = Allocation(tuple(parts[:half]), tuple(parts[half:]))
    input_shape = None
    if args.input_shape:
        input_shape = parse_numbers(
            args.input_shape, "--input-shape", "positive sizes after the batch, e.g. 1,28,28", int
        )
        if any(size < 1 for size in input_shape):
            raise CodesignError(
                f"--input-shape {args.input_shape!r}: value: expected positive sizes, e.g. 1,28,28"
            )
    run = run_defaults(Path(args.model)) if Path(args.model).is_file() else None
    same_hardware = run is not None and args.accelerator is None and args.mapping is None
    options = CostOptions(
        opt=args.opt or (run.options.opt if run else "EDP"),
        lpf_limit=args.lpf_limit or (run.options.lpf_limit if run else 6),
        nb_spatial_mappings=run.options.nb_spatial_mappings if run else CostOptions().nb_spatial_mappings,
    )
    if args.zigzag_only:
        settings = CostModelSettings.zigzag_only()
    elif run is not None:
        settings = replace(run.settings, residency=args.residency or run.settings.residency)
    else:
        settings = CostModelSettings(residency=args.residency or "auto")
    exit_fractions = parse_fractions(args.exit_fractions) if args.exit_fractions else None
    residency_fractions = None
    if (
        exit_fractions is None and run is not None
    ):  # how inputs leave depends on the network, not the hardware
        exit_fractions, residency_fractions = run.exit_fractions, run.residency_fractions
    cache_path = (
        Path(args.cost_cache) if args.cost_cache else (run.cache_path if run and run.cache_path else None)
    )
    if run is not None:
        print(_described(run, same_hardware, args, options, settings, exit_fractions is not None))
    accelerators = (
        [run.accelerator]
        if same_hardware and run is not None
        else [name.strip() for name in (args.accelerator or "edge_tpu_like").split(",")]
    )
    if len(accelerators) > 1 and args.mapping:
        raise CodesignError(
            f"--mapping: expected one accelerator with --mapping, got {len(accelerators)} ({args.accelerator}); "
            "name accelerator YAML files with a <name>.mapping.yaml beside each instead"
        )
    if len(set(accelerators)) != len(accelerators) or not all(accelerators):
        raise CodesignError(
            f"--accelerator {args.accelerator!r}: expected distinct names separated by commas"
        )
    out = (
        Path(args.out)
        if args.out
        else Path(args.model).with_suffix("").with_name(Path(args.model).stem + "_cost")
    )
    _check_writable(out)
    mapping = run.mapping if same_hardware and run is not None else args.mapping
    base_overrides = run.overrides if same_hardware and run is not None else {}
    added = dict(parse_override(text) for text in args.hw)
    for accelerator in accelerators:  # a refused --hw value is the option's fault, not the accelerator file's
        load_overridden(accelerator, mapping, base_overrides, added, ("--hw: ", "--hw: "))
    reports = [
        cost_onnx(
            args.model,
            accelerator,
            mapping=mapping,
            exit_fractions=exit_fractions,
            options=options,
            settings=settings,
            overrides={**base_overrides, **added},
            allocation=allocation or (run.allocation if same_hardware and run is not None else None),
            cache_path=cache_path or default_cache_path(),
            jobs=args.jobs,
            input_shape=input_shape,
            residency_fractions=residency_fractions,
            progress=progress_printer(),
        )
        for accelerator in accelerators
    ]  # every accelerator costed before anything is written
    if len(reports) == 1:
        print(format_cost_report(reports[0]))
        paths = write_cost_report(reports[0], out)
    else:
        table = comparison_table(reports)
        for report in reports:
            write_cost_report(report, out / report.accelerator)
        atomic_write(out / "compare.csv", lambda tmp: table.to_csv(tmp, index=False))
        print(format_comparison(table))
        names = ", ".join(report.accelerator for report in reports)
        paths = [out / "compare.csv", Path(f"{out}/{{{names}}}/")]
    print(f"\nwrote {', '.join(str(p) for p in paths)}")
    return 0


def _check_writable(out: Path) -> None:
    """Refuse an output folder that cannot be made before any costing, not after it."""
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise CodesignError(
            f"{out}: --out: expected a folder that can be written ({existing} is "
            f"{'not a folder' if not existing.is_dir() else 'not writable'}); choose another"
        )


def _described(
    run: RunDefaults,
    same_hardware: bool,
    args: argparse.Namespace,
    options: CostOptions,
    settings: CostModelSettings,
    fractions: bool,
) -> str:
    parts = [
        "its accelerator with the parameters it searched" if same_hardware else "the accelerator given",
        f"ZigZag opt={options.opt} lpf limit {options.lpf_limit}",
        f"residency {settings.residency}",
    ]
    if fractions and not args.exit_fractions:
        parts.append("exit fractions measured on its test split")
    if not args.cost_cache and run.cache_path:
        parts.append(f"its layer-cost cache {run.cache_path}")
    return (
        f"network {run.key} of run {run.run_dir}: costed with {', '.join(parts)} "
        "(an option given here overrides the run's)"
    )


def progress_printer() -> Any:
    """Progress of long ZigZag work on standard error: a line now and then (or one updated line on a terminal)."""
    import sys
    import time

    state = {"began": time.monotonic(), "last": 0.0, "shown": False}

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if now - state["began"] < 2.0 and not state["shown"]:
            return  # short work stays quiet
        if done < total and now - state["last"] < 2.0:
            return
        state["shown"] = True
        state["last"] = now
        end = "\n" if done == total or not sys.stderr.isatty() else "\r"
        print(f"costing layers with ZigZag: {done}/{total}", end=end, file=sys.stderr, flush=True)

    return show
