"""Early exit in onnxruntime at batch 1 against the same network without its exits, in one run, next to the
speed-up the cost model predicts.

For each network (the most accurate returned network with early exits of each `--run RUN`, e.g. the digits
default run and a Fashion-MNIST run), on its test split, one onnxruntime thread:

* agreement of the deployment mode with the reference mode (= PyTorch): same exit and class, accuracies;
* per-image latency at batch 1 (mean, median, p90), early exit and static (the whole network in one graph),
  and the speed-up of the mean (the expected latency: with early exit the median is only that of the exit
  most inputs take), for each step of the deployment mode switched on one at a time: the reference mode (graph
  optimisations off, two session calls per exit, decisions in numpy), + one graph per exit with the decision
  inside (one call per exit reached), + integer kernels (full graph optimisation), + IO binding;
* throughput at batch 256 (deployment mode), early exit and static;
* predicted speed-ups: from MACs (static MACs / expected MACs under the measured exit fractions: the
  CPU-independent part) and from the accelerator's cost model (the run's own expected latency);
* the targets: batch-1 speed-up >= 0.8x (goal 0.9x) the MAC-predicted one; batch 256 not below batch 1.

    .venv/bin/codesign explore --run-dir runs/digits-default               # the digits default network
    .venv/bin/python benchmarks/bench_runtime.py --run runs/digits-default --run runs/f17-auto
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codesign.cost.graph import parse_onnx
from codesign.data.registry import load_dataset
from codesign.data.splits import Split
from codesign.deploy.measure import batch1_latency, compare_modes
from codesign.deploy.runtime import DeployOptions, EarlyExitRuntime
from codesign.deploy.segments import SegmentedModel
from codesign.evaluation.result import CandidateResult
from codesign.runs.store import RunStore

warnings.filterwarnings("ignore")


@dataclass(frozen=True)
class Network:
    run: Path
    dataset: str
    seed: int  # the run's training seed: it drew the dataset's splits
    segments: Path
    result: CandidateResult


def chosen_network(run: Path) -> Network:
    """The run's most accurate returned network that has early exits (ties: the cheaper one)."""
    with RunStore.of_run(run) as store:
        config = store.config()
        finals = [f for f in store.finals().values() if f.result.num_exits > 1 and f.segments]
    if not finals:
        sys.exit(f"{run}: no returned network with early exits and exported segments")
    final = max(finals, key=lambda f: (f.result.test.accuracy, -f.result.expected_test.energy_pj))
    return Network(run, config.dataset, config.training.seed, run / final.segments, final.result)


def mac_speedup(model: SegmentedModel, fractions: tuple[float, ...]) -> float:
    """Static MACs over expected MACs when inputs leave at each exit with `fractions`."""
    segment_macs = [sum(layer.macs for layer in parse_onnx(p).layers) for p in model.segment_paths()]
    head_macs = [sum(layer.macs for layer in parse_onnx(p).layers) for p in model.head_paths()]
    reaching = [sum(segment_macs[: k + 1]) + sum(head_macs[: k + 1]) for k in range(model.num_exits)]
    expected = sum(f * m for f, m in zip(fractions, reaching, strict=True))
    static = sum(segment_macs) + head_macs[-1]
    return static / expected


def latency_pair(
    runtime: EarlyExitRuntime, images: np.ndarray, repeats: int
) -> tuple[float, float, float, float, float, float]:
    """(early mean, median, p90, static mean, median, p90) per image at batch 1, interleaved repeats
    (the median over repeats of each)."""
    early, static = [], []
    runtime.run(images[:1])
    runtime.run(images[:1], static=True)
    for _ in range(repeats):
        early.append(batch1_latency(runtime, images))
        static.append(batch1_latency(runtime, images, static=True))
    return tuple(
        statistics.median(getattr(r, field) for r in runs)
        for runs in (early, static)
        for field in ("mean_s", "median_s", "p90_s")
    )


def throughput(runtime: EarlyExitRuntime, split: Split, batch: int, repeats: int) -> tuple[float, float]:
    runtime.run_split(split, batch)
    early = [runtime.run_split(split, batch, warmup=False).images_per_second for _ in range(repeats)]
    static = [
        runtime.run_split(split, batch, static=True, warmup=False).images_per_second for _ in range(repeats)
    ]
    return statistics.median(early), statistics.median(static)


def bench(network: Network, images_n: int, repeats: int, data_dir: Path | None) -> dict[str, float]:
    dataset = load_dataset(network.dataset, seed=network.seed, data_dir=data_dir)
    test = dataset.test
    images = np.ascontiguousarray(test.images.numpy()[:images_n], dtype=np.float32)
    result = network.result
    print(
        f"\n== {network.run}: {result.spec.describe()} [{result.spec.describe_exits()}] on {network.dataset}"
        f" ({len(test)} test images, {len(images)} timed one by one)"
    )
    reference = EarlyExitRuntime(network.segments, mode="reference")
    deployed = EarlyExitRuntime(network.segments)
    agreement = compare_modes(reference, deployed, test)
    print(
        f"deployment vs reference (= PyTorch): same exit and class {100 * agreement.same_exit_and_class:.2f}%, "
        f"test accuracy {agreement.deploy_accuracy:.4f} vs {agreement.reference_accuracy:.4f} "
        f"({100 * (agreement.deploy_accuracy - agreement.reference_accuracy):+.2f} points)"
    )
    fractions = deployed.run_split(test, 256).exit_fractions
    # predicted for the images timed one by one (their exit fractions may differ a little from the split's)
    timed = np.bincount(deployed.run(images).exits, minlength=deployed.num_exits) / len(images)
    predicted_macs = mac_speedup(deployed.model, tuple(float(f) for f in timed))
    expected = result.expected_test
    predicted_accelerator = result.static.latency_cycles / expected.latency_cycles
    print(
        f"exit fractions on test {' '.join(f'{f:.3f}' for f in fractions)} (timed images: "
        f"{' '.join(f'{f:.3f}' for f in timed)}); predicted speed-up: MACs "
        f"{predicted_macs:.2f}x, {result.accelerator} {predicted_accelerator:.2f}x (the run's expected latency)"
    )
    steps = [
        ("reference (2 calls/exit, numpy decisions)", reference),
        (
            "+ one graph per exit, decision inside",
            EarlyExitRuntime(network.segments, deploy=DeployOptions(False, False)),
        ),
        (
            "+ integer kernels (full optimisation)",
            EarlyExitRuntime(network.segments, deploy=DeployOptions(True, False)),
        ),
        ("+ IO binding (the deployment mode)", deployed),
    ]
    print(
        f"{'batch 1, per image (us): mean / median / p90':<44} {'early':>20} {'static':>20} {'speed-up':>8}"
    )
    figures = {}
    for label, runtime in steps:
        e_mean, e_median, e_p90, s_mean, s_median, s_p90 = latency_pair(runtime, images, repeats)
        speedup = s_mean / e_mean  # of the expected latency, which is what the MAC ratio predicts
        print(
            f"{label:<44} {e_mean * 1e6:6.1f} {e_median * 1e6:6.1f} {e_p90 * 1e6:6.1f} "
            f"{s_mean * 1e6:6.1f} {s_median * 1e6:6.1f} {s_p90 * 1e6:6.1f} {speedup:7.2f}x"
        )
        figures[label] = speedup
    batch1 = figures[steps[-1][0]]
    early_rate, static_rate = throughput(deployed, test, 256, repeats)
    batch256 = early_rate / static_rate
    print(
        f"batch 256 (deployment mode): early exit {early_rate:,.0f} images/s, static {static_rate:,.0f}: {batch256:.2f}x"
    )
    ratio = batch1 / predicted_macs
    print(
        f"batch-1 speed-up {batch1:.2f}x = {ratio:.2f} of the MAC-predicted {predicted_macs:.2f}x "
        f"(target >= 0.8: {'met' if ratio >= 0.8 else 'NOT met'}; goal 0.9: {'met' if ratio >= 0.9 else 'not met'}); "
        f"batch 256 {batch256:.2f}x {'>=' if batch256 >= batch1 else '<'} batch 1 "
        f"({'met' if batch256 >= batch1 else 'NOT met'}; {batch256 / predicted_macs:.2f} of the MAC-predicted)"
    )
    return {"batch1": batch1, "predicted_macs": predicted_macs, "batch256": batch256}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run", type=Path, action="append", required=True, help="an explore run folder (repeatable)"
    )
    parser.add_argument(
        "--images", type=int, default=2000, help="test images timed one by one (default 2000)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timed passes, median (default 3)")
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    start = time.perf_counter()
    for run in args.run:
        bench(chosen_network(run), args.images, args.repeats, args.data_dir)
    print(f"\nbenchmark wall time {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
