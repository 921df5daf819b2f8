"""`codesign infer MODEL_DIR`: a dataset split through a segmented early-exit model in onnxruntime,
compared with the same model where every input goes to the final exit."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codesign.cli.options import parse_numbers, positive_int
from codesign.errors import CodesignError, input_error
from codesign.exits import POLICIES

if TYPE_CHECKING:
    from codesign.deploy.runtime import SplitResult
    from codesign.deploy.segments import SegmentedModel


def parse_thresholds(text: str) -> tuple[float, ...]:
    values = parse_numbers(text, "--thresholds", "comma-separated numbers, e.g. 0.2,0.5")
    if not all(0.0 <= v <= 1.0 for v in values):
        raise CodesignError(
            f"--thresholds {text!r}: value: expected confidences in [0, 1] (every policy's confidence lies there), e.g. 0.2,0.5"
        )
    return values


def format_comparison(model: SegmentedModel, early: SplitResult, static: SplitResult, label: str) -> str:
    exits = ", ".join(str(s) for s in model.exit_stages)
    lines = [
        f"model {model.folder} (spec {model.spec_key}): exits after stages {exits}",
        f"data  {label}: {early.num_images} images, batch size {early.batch_size}",
        "",
        f"{'':12} {'accuracy':>9} {'images/s':>11}  exit fractions (earliest first); images/s: median of passes",
        f"{'early exit':12} {early.accuracy:>9.4f} {early.images_per_second:>11,.0f}  "
        + " ".join(f"{f:.3f}" for f in early.exit_fractions),
        f"{'static':12} {static.accuracy:>9.4f} {static.images_per_second:>11,.0f}  "
        + " ".join(f"{f:.3f}" for f in static.exit_fractions),
        "",
        "inputs entering each segment (early exit): " + " ".join(str(c) for c in early.segment_inputs),
        f"accuracy change {100 * (early.accuracy - static.accuracy):+.2f} points",
    ]
    return "\n".join(lines)


def _run_dataset(model_dir: Path) -> str | None:
    """The dataset of the run that exported `model_dir` (RUN/segments/KEY/), if it is a run's."""
    from codesign.runs.store import STORE_NAME, RunStore

    run_dir = model_dir.resolve().parent.parent
    if model_dir.resolve().parent.name != "segments" or not (run_dir / STORE_NAME).is_file():
        return None
    with RunStore.of_run(run_dir) as store:
        config = store.config()
    return config.dataset if config is not None else None


def _median_run(results: list[SplitResult]) -> SplitResult:
    return sorted(results, key=lambda r: r.images_per_second)[len(results) // 2]


def _infer(args: argparse.Namespace) -> int:
    from codesign.data.registry import load_dataset
    from codesign.deploy.measure import batch1_latency, compare_modes
    from codesign.deploy.runtime import EarlyExitRuntime

    thresholds = parse_thresholds(args.thresholds) if args.thresholds else None
    runtime = EarlyExitRuntime(
        args.model_dir, thresholds=thresholds, policy=args.policy, threads=args.threads or 1, mode=args.mode
    )
    dataset_name = args.dataset or _run_dataset(Path(args.model_dir)) or "digits"
    dataset = load_dataset(dataset_name, seed=0, data_dir=Path(args.data_dir) if args.data_dir else None)
    model = runtime.model
    if dataset.num_classes != model.num_classes:
        raise input_error(
            model.manifest_path,
            "num_classes",
            f"{dataset.num_classes} to match dataset {dataset_name}",
            model.num_classes,
        )
    shape = tuple(int(s) for s in dataset.train.images.shape[1:])
    if shape != model.input_shape:
        raise input_error(
            model.manifest_path,
            "input_shape",
            f"{list(shape)} to match dataset {dataset_name}",
            list(model.input_shape),
        )
    split = getattr(dataset, args.split)
    runtime.run_split(split, args.batch_size)  # warm-up of every session
    early_runs, static_runs = [], []
    for _ in range(args.repeats):  # interleaved, so both modes see the same machine load
        early_runs.append(runtime.run_split(split, args.batch_size, warmup=False))
        static_runs.append(runtime.run_split(split, args.batch_size, static=True, warmup=False))
    early, static = _median_run(early_runs), _median_run(static_runs)
    how = (
        "deployment mode: integer kernels, one session call per exit reached"
        if runtime.mode == "deploy"
        else "reference mode: graph optimisations off, results equal PyTorch's"
    )
    print(
        f"policy {runtime.policy}, thresholds {' '.join(f'{t:g}' for t in runtime.thresholds)}, "
        f"onnxruntime threads {runtime.threads} ({how})"
    )
    print(format_comparison(model, early, static, f"{dataset_name} {args.split}"))
    images = split.images.numpy()[: args.latency_images]
    latency = batch1_latency(runtime, images)
    static_latency = batch1_latency(runtime, images, static=True)
    print(
        f"latency per image at batch 1 ({len(images)} images): early exit mean {latency.mean_s * 1e6:.1f} us "
        f"(median {latency.median_s * 1e6:.1f}, p90 {latency.p90_s * 1e6:.1f}), static mean "
        f"{static_latency.mean_s * 1e6:.1f} us (median {static_latency.median_s * 1e6:.1f}, p90 "
        f"{static_latency.p90_s * 1e6:.1f})"
    )
    print(
        f"speed-up {static_latency.mean_s / latency.mean_s:.2f}x: static over early-exit expected latency (mean at "
        "batch 1), as the cost model defines it; images/s above are throughput at the batch size, not compared"
    )
    if runtime.mode == "deploy":
        reference = EarlyExitRuntime(
            args.model_dir,
            thresholds=thresholds,
            policy=args.policy,
            threads=runtime.threads,
            mode="reference",
        )
        agreement = compare_modes(reference, runtime, split)
        print(
            f"deployment vs reference mode (= PyTorch) on {agreement.num_images} images: same exit and class for "
            f"{100 * agreement.same_exit_and_class:.2f}%, accuracy {agreement.deploy_accuracy:.4f} vs "
            f"{agreement.reference_accuracy:.4f}"
        )
    return 0


def add_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register `infer` on an argparse sub-parser group; the handler is stored as `handler`."""
    inf = subparsers.add_parser(
        "infer",
        help="run a dataset split through a segmented early-exit ONNX model in onnxruntime",
    )
    inf.add_argument(
        "model_dir",
        metavar="MODEL_DIR",
        help="a returned network's segmented export: RUN/segments/KEY/ of a `codesign explore` run",
    )
    inf.add_argument("--dataset", help="dataset name (default: the run's, else digits)")
    inf.add_argument("--split", default="test", choices=["test", "val"], help="split to run (default: test)")
    inf.add_argument(
        "--data-dir", help="folder with the dataset files (Fashion-MNIST IDX, CIFAR batches, SVHN .mat)"
    )
    inf.add_argument("--batch-size", type=positive_int, default=256, help="inputs per batch (default: 256)")
    inf.add_argument(
        "--thresholds", help="one threshold per early exit, e.g. 0.2,0.5 (default: those in the manifest)"
    )
    inf.add_argument(
        "--policy", choices=list(POLICIES), help="exit confidence policy (default: the manifest's)"
    )
    inf.add_argument(
        "--threads",
        type=positive_int,
        help="onnxruntime intra-op threads per session (default: 1)",
    )
    inf.add_argument(
        "--mode",
        choices=["deploy", "reference"],
        default="deploy",
        help="deploy (default): integer kernels, decisions in the graphs, one call per exit reached; "
        "reference: results equal PyTorch's",
    )
    inf.add_argument(
        "--repeats",
        type=positive_int,
        default=3,
        help="timed passes of each mode, interleaved; median shown (default 3)",
    )
    inf.add_argument(
        "--latency-images",
        type=positive_int,
        default=2000,
        help="images timed one at a time for the latency and speed-up (default 2000)",
    )
    inf.set_defaults(handler=_infer)
    return inf
