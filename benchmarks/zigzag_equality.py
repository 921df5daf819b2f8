"""Every shipped ZigZag hardware/mapping pair on ZigZag's ResNet-18 and MobileNetV2: codesign against ZigZag.

For each pair (digital and in-memory computing) and network: ZigZag's own
`get_hardware_performance_zigzag` (with `in_memory_compute=True` on an IMC array), then `codesign.cost.cost_onnx`
with plain-ZigZag settings (`--zigzag-only`) and an empty layer-cost cache (cold). Prints one table: both
totals, their relative differences (goal <= 1e-9) and the cold time ratio (goal <= 0.7x ZigZag direct). Pairs
ZigZag itself cannot cost are listed with its error and not compared. Both run every shipped file unchanged; where a
shipped mapping unrolls a loop wider than the array dimension (default.yaml's K 32 on eyeriss_like's 14-wide D1),
ZigZag cuts it to the dimension and codesign costs it so, with a one-line warning (marked `cut`).

    .venv/bin/python benchmarks/zigzag_equality.py --lpf-limit 2 --jobs 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import onnx

ZIGZAG_INPUTS = Path(__import__("zigzag").__file__).parent / "inputs"
# ZigZag's shipped hardware files and the mapping each is meant for (see ../shared/NOTES.md).
PAIRS = {
    "tpu_like": "tpu_like",
    "edge_tpu_like": "edge_tpu_like",
    "ascend_like": "ascend_like",
    "meta_prototype": "meta_prototype_like",
    "tesla_npu_like": "tesla_npu_like",
    "eyeriss_like": "default",
    "generic_array_cacti": "default",
    "gemm_l1": "gemm_l1",
    "gemm_l1_l3": "gemm_l1_l3",
    "aimc": "default_imc",
    "dimc": "default_imc",
}


def zigzag_direct(model: onnx.ModelProto, hardware: Path, mapping: Path, imc: bool, args, work: Path):  # noqa: ANN001
    from zigzag.api import get_hardware_performance_zigzag

    start = time.perf_counter()
    result = get_hardware_performance_zigzag(
        model,
        str(hardware),
        str(mapping),
        opt=args.opt,
        lpf_limit=args.lpf_limit,
        in_memory_compute=imc,
        dump_folder=str(work),
        loma_show_progress_bar=False,
    )
    return float(result[0]), float(result[1]), time.perf_counter() - start


def codesign_cold(network: Path, hardware: Path, mapping: Path, args, work: Path):  # noqa: ANN001
    from codesign.cost.report import cost_onnx
    from codesign.cost.settings import CostModelSettings, CostOptions

    start = time.perf_counter()
    report = cost_onnx(
        network,
        accelerator=str(hardware),
        mapping=str(mapping),
        options=CostOptions(opt=args.opt, lpf_limit=args.lpf_limit),
        settings=CostModelSettings.zigzag_only(),
        cache_path=work / "cold.sqlite",
        jobs=args.jobs,
    )
    final = report.exits.iloc[-1]
    return float(final["energy_pj"]), float(final["latency_cycles"]), time.perf_counter() - start


def main() -> int:
    import logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="resnet18,mobilenetv2")
    parser.add_argument("--accelerators", default=",".join(PAIRS), help="names from ZigZag's inputs/hardware")
    parser.add_argument("--lpf-limit", type=int, default=2)
    parser.add_argument("--opt", default="EDP")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING
    )  # before ZigZag's API turns INFO logging on for the root logger
    from codesign.cost.imc import is_imc
    from codesign.hardware.target import load_hardware
    from codesign.hardware.zigzag_files import capped_mapping_file  # only to mark the pairs ZigZag cuts

    print(
        f"ZigZag opt={args.opt} lpf_limit={args.lpf_limit}; codesign --zigzag-only, empty cache, {args.jobs} worker(s)"
    )
    header = f"{'network':12} {'hardware':20} {'kind':4} {'zigzag pJ':>14} {'rel.diff E':>10} {'rel.diff L':>10} {'zigzag s':>9} {'codesign s':>10} {'ratio':>6}"
    print(header)
    worst_diff, worst_ratio, failures = 0.0, 0.0, 0
    for name in args.networks.split(","):
        network = ZIGZAG_INPUTS / "workload" / f"{name}.onnx"
        model = onnx.shape_inference.infer_shapes(onnx.load(str(network), load_external_data=False))
        for hw in args.accelerators.split(","):
            hardware = ZIGZAG_INPUTS / "hardware" / f"{hw}.yaml"
            mapping = ZIGZAG_INPUTS / "mapping" / f"{PAIRS[hw]}.yaml"
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                cut = capped_mapping_file(hardware, mapping, work / "cut") != mapping
                imc = is_imc(load_hardware(str(hardware), str(mapping)))
                kind = "IMC" if imc else "dig"
                try:
                    energy, latency, direct_s = zigzag_direct(
                        model, hardware, mapping, imc, args, work / "zz"
                    )
                except Exception as exc:  # noqa: BLE001 - a pair ZigZag cannot cost is reported, not compared
                    print(f"{name:12} {hw:20} {kind:4} ZigZag fails: {type(exc).__name__}: {str(exc)[:80]}")
                    continue
                ours_e, ours_l, ours_s = codesign_cold(network, hardware, mapping, args, work)
            diff_e = abs(ours_e - energy) / energy
            diff_l = abs(ours_l - latency) / latency
            ratio = ours_s / direct_s
            worst_diff = max(worst_diff, diff_e, diff_l)
            worst_ratio = max(worst_ratio, ratio)
            failures += diff_e > 1e-9 or diff_l > 1e-9 or ratio > 0.7
            print(
                f"{name:12} {hw:20} {kind:4} {energy:14.6e} {diff_e:10.1e} {diff_l:10.1e} {direct_s:9.1f} {ours_s:10.1f} {ratio:6.2f}"
                + (" cut" if cut else ""),
                flush=True,
            )
    print(
        f"largest relative difference {worst_diff:.1e} (goal <= 1e-9); largest cold time ratio {worst_ratio:.2f}x "
        f"(goal <= 0.7x); {failures} pair(s) short of a goal"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
