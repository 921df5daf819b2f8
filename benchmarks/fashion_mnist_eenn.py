"""Issue-4 benchmark: does the search find, on Fashion-MNIST, an early-exit network whose expected energy
is at least 50% below its own static counterpart (same network, final exit only) at no more than 1 point
lower test accuracy? Prints every returned network's test figures and the inherited-vs-fine-tuned ranking.

    .venv/bin/python benchmarks/fashion_mnist_eenn.py            # about 45 minutes on 2 cores; resumable
    .venv/bin/python benchmarks/fashion_mnist_eenn.py --accelerator mcu_npu
    .venv/bin/python benchmarks/fashion_mnist_eenn.py --static     # the same search, every exit off (baseline)

Needs the Fashion-MNIST IDX files (`apt-get install dataset-fashion-mnist`, or --data-dir).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch

from codesign.config.workload import load_workload
from codesign.runs.explore import explore
from codesign.runs.outputs import finetune_rank_correlation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="fashion_mnist")
    parser.add_argument("--accelerator", default=None)
    parser.add_argument("--run-dir", default="runs/bench-fashion-mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--static",
        action="store_true",
        help="search static networks only (for eenn_vs_static.py --static-run)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="PyTorch threads in this process (supernet training)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    workload = load_workload(args.workload)
    if args.accelerator:
        workload = replace(workload, accelerator=args.accelerator)
    run_dir = Path(args.run_dir)
    if args.accelerator:
        run_dir = run_dir.with_name(f"{run_dir.name}-{args.accelerator}")
    if args.static:
        workload = replace(workload, space=replace(workload.space, early_exits=False))
        run_dir = run_dir.with_name(f"{run_dir.name}-static")
    start = time.perf_counter()
    result = explore(
        workload,
        run_dir,
        jobs=args.jobs,
        progress=True,
        data_dir=Path(args.data_dir) if args.data_dir else None,
    )
    print(f"\nbenchmark wall time {time.perf_counter() - start:.0f} s (run folder {run_dir})")
    if args.static:
        return
    print("\nreturned networks (test split, after the final fine-tuning):")
    print(
        f"{'acc%':>6} {'static%':>7} {'drop':>5} {'E/static':>8} {'L/static':>8} {'E[nJ]':>8} {'static':>8} "
        f"{'lat':>7} {'static':>7}  exit fractions / exits"
    )
    winners = []
    for r in result.pareto:
        drop = 100 * (r.static_test_accuracy - r.test.accuracy)
        ratio = r.expected_test.energy_pj / r.static.energy_pj
        lat_ratio = r.expected_test.latency_cycles / r.static.latency_cycles
        print(
            f"{100 * r.test.accuracy:6.2f} {100 * r.static_test_accuracy:7.2f} {drop:5.2f} {ratio:8.2f} {lat_ratio:8.2f} "
            f"{r.expected_test.energy_pj / 1e3:8.1f} {r.static.energy_pj / 1e3:8.1f} {r.expected_test.latency_cycles:7.0f} "
            f"{r.static.latency_cycles:7.0f}  {' '.join(f'{f:.3f}' for f in r.test.fractions)} | {r.spec.describe_exits()}"
        )
        if ratio <= 0.5 and drop <= 1.0 and r.num_exits > 1:
            winners.append((ratio, r))
    correlation = finetune_rank_correlation(result.pareto)
    if correlation:
        print(
            f"\ninherited vs fine-tuned test accuracy: Kendall tau {correlation[0]:.2f}, Spearman {correlation[1]:.2f}"
        )
    if winners:
        ratio, best = min(winners, key=lambda w: w[0])
        print(
            f"\nTARGET MET: {best.spec.describe()} [{best.spec.describe_exits()}] expected energy {ratio:.2f}x its static "
            f"counterpart ({best.expected_test.energy_pj / 1e3:.1f} vs {best.static.energy_pj / 1e3:.1f} nJ), test accuracy "
            f"{100 * best.test.accuracy:.2f}% vs {100 * best.static_test_accuracy:.2f}% static, exit fractions "
            f"{' '.join(f'{f:.3f}' for f in best.test.fractions)}, latency {best.expected_test.latency_cycles:.0f} vs "
            f"{best.static.latency_cycles:.0f} cycles"
        )
    else:
        print("\nTARGET NOT MET: no returned network has <= 0.5x static energy at <= 1 point accuracy loss")


if __name__ == "__main__":
    main()
