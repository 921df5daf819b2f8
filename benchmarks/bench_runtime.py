"""Early-exit onnxruntime inference vs the same network without exits, on this CPU, in one run.

Trains (or loads cached weights of) a small quantized three-stage network with exits after stages 0
and 1, picks exit thresholds on the validation split (the largest share of early exits whose
validation accuracy stays within `--max-drop` of the final exit's), exports it segmented
(`codesign.deploy.runtime.export_segments`) and as one static QCDQ ONNX with only the final exit
(`codesign.deploy.qcdq.export_qcdq` of `spec.without_early_exits()`), then times on the test split:

* early exit: `EarlyExitRuntime` (the batch shrinks at every exit);
* static, one ONNX: every input through the whole backbone and the final head in a single session;
* static, chained segments: the segmented model with every input sent to the final exit.

All sessions run with onnxruntime graph optimisations off (as `codesign.deploy.qcdq` requires for results
that match PyTorch) and intra-op spinning off (`codesign.deploy.qcdq.onnxruntime_session`), with each
`--threads` setting in turn. Prints accuracy, exit fractions, images/s (median of `--repeats` passes,
interleaved) and the speed-up of early exit over the static one-ONNX network.

    .venv/bin/python benchmarks/bench_runtime.py                          # digits, a few seconds
    .venv/bin/python benchmarks/bench_runtime.py --dataset fashion-mnist  # files in /usr/share/datasets

Training is Brevitas quantization-aware training on the CPU: on 2 cores Fashion-MNIST takes about a
second per batch of 64, hence the default training subset; weights are cached per dataset, network,
subset size and epochs, so later runs only time inference.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from codesign.data.registry import load_dataset
from codesign.data.splits import Split, subsample
from codesign.deploy.qcdq import export_qcdq, onnxruntime_session
from codesign.deploy.runtime import EarlyExitRuntime
from codesign.deploy.segments import export_segments
from codesign.errors import CodesignError
from codesign.exits import CachedExits, exit_decisions
from codesign.network.model import build_model, load_shared_weights
from codesign.network.settings import TrainingConfig
from codesign.network.training import exit_logits, train_architecture
from codesign.spec import CandidateSpec, StageSpec

warnings.filterwarnings("ignore")
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "codesign" / "bench_runtime"


def bench_spec(in_channels: int, resolution: int, num_classes: int) -> CandidateSpec:
    """A small backbone whose later stages cost more than the early ones (where early exit pays).

    A stage halves the resolution only while the result stays even: the exit heads' 2x2 average pool
    exports to ONNX only when it divides the feature map (digits 8 -> 8 -> 4 -> 2, Fashion-MNIST
    28 -> 14 -> 14 -> 14).
    """
    if resolution <= 8:
        shapes = [(1, 16), (2, 32), (2, 64)]  # (depth, width)
        size, strides = resolution, [1]
    else:
        shapes = [(1, 16), (1, 32), (1, 32)]
        size, strides = resolution, []
    for _ in range(len(shapes) - len(strides)):
        stride = 2 if (size // 2) % 2 == 0 and size // 2 >= 2 else 1
        strides.append(stride)
        size //= stride
    stages = tuple(
        StageSpec(depth=d, width=w, kernel=3, stride=s, weight_bits=8, act_bits=8)
        for (d, w), s in zip(shapes, strides, strict=True)
    )
    return CandidateSpec(
        stages=stages,
        exits=(True, True),
        thresholds=(1.0, 1.0),
        num_classes=num_classes,
        in_channels=in_channels,
        resolution=resolution,
    )


def trained_weights(spec: CandidateSpec, dataset, epochs: int, use_cache: bool) -> dict[str, torch.Tensor]:
    path = CACHE_DIR / f"{dataset.name}-{spec.key()}-n{len(dataset.train)}-e{epochs}.pt"
    if use_cache and path.is_file():
        print(f"weights: loaded {path}")
        return torch.load(path, weights_only=True)
    start = time.perf_counter()
    trained = train_architecture(
        spec,
        dataset,
        TrainingConfig(epochs=epochs, seed=0),
        progress=lambda epoch, loss: print(f"  epoch {epoch}/{epochs}: loss {loss:.3f}", flush=True),
    )
    print(f"weights: trained {epochs} epochs in {time.perf_counter() - start:.1f} s")
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".pt", dir=path.parent)
        os.close(fd)
        torch.save(trained.state_dict, tmp)
        os.replace(tmp, path)
    return trained.state_dict


def pick_thresholds(cached: CachedExits, max_drop: float) -> tuple[float, float]:
    """Fewest expected segments run (most early exits) with validation accuracy >= final - max_drop."""
    grid = [round(t, 2) for t in np.arange(0.05, 1.0001, 0.05)]
    final = float(cached.correct[-1].mean())
    best, best_key = (1.0, 1.0), None
    for thresholds in itertools.product(grid, repeat=2):
        stats = cached.simulate((0, 1, 2), thresholds)
        if stats.accuracy < final - max_drop:
            continue
        segments_run = sum((k + 1) * f for k, f in enumerate(stats.fractions))
        key = (segments_run, -stats.accuracy)
        if best_key is None or key < best_key:
            best, best_key = thresholds, key
    return best


def time_static_onnx(session, images: np.ndarray, labels: np.ndarray, batch_size: int) -> tuple[float, float]:
    """(accuracy, seconds) of the one-ONNX static network over all images."""
    name_in, name_out = session.get_inputs()[0].name, session.get_outputs()[0].name
    predictions = np.empty(len(labels), dtype=np.int64)
    start = time.perf_counter()
    for begin in range(0, len(labels), batch_size):
        batch = images[begin : begin + batch_size]
        predictions[begin : begin + batch_size] = session.run([name_out], {name_in: batch})[0].argmax(axis=1)
    seconds = time.perf_counter() - start
    return float((predictions == labels).mean()), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "fashion-mnist"])
    parser.add_argument("--data-dir", help="dataset folder (default: the system datasets folder)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: 12 digits, 3 fashion-mnist)")
    parser.add_argument(
        "--train-images",
        type=int,
        help="train on a stratified subset of this many images (default: all for digits, 12000 for fashion-mnist)",
    )
    parser.add_argument("--no-cache", action="store_true", help=f"always train; do not use {CACHE_DIR}")
    parser.add_argument(
        "--thresholds", help="score-margin thresholds of exits 0 and 1, e.g. 0.5,0.3 (default: auto)"
    )
    parser.add_argument("--max-drop", type=float, default=0.01, help="auto thresholds: accuracy drop allowed")
    parser.add_argument("--batch-sizes", default="256,1", help="comma-separated batch sizes to time")
    parser.add_argument("--threads", default="1,2", help="comma-separated onnxruntime intra-op thread counts")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per mode (median reported)")
    parser.add_argument("--max-images", type=int, help="time on the first N test images only")
    parser.add_argument("--out", help="folder for the exported models (default: a temporary folder)")
    args = parser.parse_args()

    torch.set_num_threads(os.cpu_count() or 1)
    try:
        dataset = load_dataset(args.dataset, seed=0, data_dir=Path(args.data_dir) if args.data_dir else None)
    except CodesignError as exc:
        print(f"bench_runtime: {exc}", file=sys.stderr)
        return 2
    epochs = args.epochs or (12 if args.dataset == "digits" else 3)
    train_images = args.train_images or (None if args.dataset == "digits" else 12000)
    if train_images is not None and train_images < len(dataset.train):
        dataset = subsample(dataset, train=train_images, seed=0)
    spec = bench_spec(dataset.in_channels, dataset.resolution, dataset.num_classes)
    print(
        f"dataset {dataset.name}: {len(dataset.train)} train / {len(dataset.val)} val / {len(dataset.test)} test"
    )
    print(f"network {spec.describe()}, exits after stages 0, 1 and final 2")
    state = trained_weights(spec, dataset, epochs, use_cache=not args.no_cache)
    model = load_shared_weights(build_model(spec), state)

    cached = CachedExits.from_logits(exit_logits(model, dataset.val), dataset.val.labels.numpy())
    if args.thresholds:
        thresholds = tuple(float(t) for t in args.thresholds.split(","))
    else:
        thresholds = pick_thresholds(cached, args.max_drop)
    val = cached.simulate((0, 1, 2), thresholds)
    print(
        f"thresholds (score margin) {thresholds[0]:g}, {thresholds[1]:g}; validation: accuracy {val.accuracy:.4f}"
        f" (final exit {cached.correct[-1].mean():.4f}), exit fractions "
        + " ".join(f"{f:.3f}" for f in val.fractions)
    )

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="codesign-bench-runtime-"))
    spec_with_thresholds = CandidateSpec.from_dict({**spec.to_dict(), "thresholds": list(thresholds)})
    model = load_shared_weights(build_model(spec_with_thresholds), state)
    export_segments(model, out / "segmented")
    static_model = load_shared_weights(build_model(spec.without_early_exits()), state)
    static_path = export_qcdq(static_model, out / "static.onnx")
    print(f"exported to {out}")

    test: Split = dataset.test
    if args.max_images:
        test = Split(images=test.images[: args.max_images], labels=test.labels[: args.max_images])
    images = np.ascontiguousarray(test.images.numpy(), dtype=np.float32)
    labels = test.labels.numpy()
    runtime = EarlyExitRuntime(out / "segmented", threads=1)

    # agreement with PyTorch on the timed images
    reference_predictions, reference_exits = exit_decisions(
        exit_logits(model, test), thresholds, policy="score_margin"
    )
    check = runtime.run(images)
    agree = np.array_equal(check.predictions, reference_predictions) and np.array_equal(
        check.exits, reference_exits
    )
    print(f"runtime predictions and exits equal PyTorch's on {len(labels)} test images: {agree}")

    print(
        f"\ntiming on {len(labels)} test images, {os.cpu_count()} CPU cores, onnxruntime graph optimisations off, "
        f"median of {args.repeats} interleaved passes; speed-up relative to static one ONNX"
    )
    header = f"{'threads':>7} {'batch':>5}  {'mode':<24} {'accuracy':>8} {'images/s':>10} {'speed-up':>8}  exit fractions"
    print(header)
    print("-" * len(header))
    for threads in [int(t) for t in args.threads.split(",")]:
        runtime = EarlyExitRuntime(out / "segmented", threads=threads)
        static_session = onnxruntime_session(static_path, threads)
        for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
            early_rates, chained_rates, static_rates = [], [], []
            runtime.run_split(test, batch_size)  # warm-up of every session
            runtime.run_split(test, batch_size, static=True)
            time_static_onnx(static_session, images, labels, batch_size)
            for _ in range(args.repeats):
                early = runtime.run_split(test, batch_size, warmup=False)
                early_rates.append(early.images_per_second)
                chained = runtime.run_split(test, batch_size, static=True, warmup=False)
                chained_rates.append(chained.images_per_second)
                static_accuracy, seconds = time_static_onnx(static_session, images, labels, batch_size)
                static_rates.append(len(labels) / seconds)
            static_rate = statistics.median(static_rates)
            rows = [
                (
                    "early exit (segmented)",
                    early.accuracy,
                    statistics.median(early_rates),
                    early.exit_fractions,
                ),
                ("static, one ONNX", static_accuracy, static_rate, (0.0, 0.0, 1.0)),
                (
                    "static, chained segments",
                    chained.accuracy,
                    statistics.median(chained_rates),
                    chained.exit_fractions,
                ),
            ]
            for name, accuracy, rate, fractions in rows:
                print(
                    f"{threads:>7} {batch_size:>5}  {name:<24} {accuracy:>8.4f} {rate:>10,.0f} "
                    f"{rate / static_rate:>7.2f}x  " + " ".join(f"{f:.3f}" for f in fractions)
                )
    print(
        "inputs entering segments 0/1/2 per pass (early exit): "
        + " / ".join(str(c) for c in early.segment_inputs)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
