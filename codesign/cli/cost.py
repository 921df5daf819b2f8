"""`codesign cost MODEL.onnx`: per-layer and per-exit cost of an ONNX network on an accelerator."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from codesign.cli.options import parse_fractions, parse_numbers, positive_int
from codesign.cost.settings import RESIDENCY_MODES, ZIGZAG_CRITERIA, CostModelSettings, CostOptions
from codesign.errors import CodesignError


def add_command(sub: Any) -> None:
    co = sub.add_parser("cost", help="per-layer and per-exit cost of an ONNX network on an accelerator")
    co.add_argument(
        "model", help="ONNX file (Brevitas QCDQ or float); each graph output is an exit, earliest first"
    )
    co.add_argument(
        "--accelerator", "-a", default="edge_tpu_like", help="library name or accelerator YAML path"
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
    co.add_argument("--opt", default="EDP", choices=list(ZIGZAG_CRITERIA), help="ZigZag mapping criterion")
    co.add_argument(
        "--lpf-limit", type=positive_int, default=6, help="ZigZag LOMA loop-prime-factor limit (default 6)"
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
    co.add_argument("--cost-cache", help="layer-cost cache file")
    co.add_argument(
        "--jobs", "-j", type=positive_int, default=os.cpu_count() or 1, help="ZigZag worker processes"
    )
    co.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from codesign.cost.cache import default_cache_path
    from codesign.cost.exits import Allocation
    from codesign.cost.report import cost_onnx, format_cost_report, write_cost_report
    from codesign.hardware.overrides import parse_override

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
    report = cost_onnx(
        args.model,
        args.accelerator,
        mapping=args.mapping,
        exit_fractions=parse_fractions(args.exit_fractions) if args.exit_fractions else None,
        options=CostOptions(opt=args.opt, lpf_limit=args.lpf_limit),
        settings=CostModelSettings.zigzag_only()
        if args.zigzag_only
        else CostModelSettings(residency=args.residency or "auto"),
        overrides=dict(parse_override(text) for text in args.hw),
        allocation=allocation,
        cache_path=Path(args.cost_cache) if args.cost_cache else default_cache_path(),
        jobs=args.jobs,
        input_shape=input_shape,
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
