"""How far the shipped exit-head training is from what each head can reach on its frozen features.

Two tables, for the largest and the smallest sub-network of the workload's space:

1. Supernet heads (float): the shipped training (`network.exit_heads.train_exit_heads`) trains every early
   head at once, shared by all sub-networks, until the heads' validation loss stops falling. Ceiling: each
   early head trained alone, from the same initialisation, on that sub-network's frozen stage outputs, with
   Adam until its validation loss has not fallen for 20 epochs (learning rate halved after each 5 without
   improvement), at most 1,000 epochs.
2. Candidate heads (quantized, what the search measures): the evaluator's own steps (inherited, calibrated,
   heads fine-tuned until validation stops improving, `evaluation.weights`). Ceiling: the same quantized
   heads trained alone on the same frozen quantized stage outputs (every training image) for as long as
   they keep improving (`network.finetune.finetune_heads` with checks every 50 steps, patience 10, at most
   20,000 steps), both from where the search's heads are and from a new initialisation (learning rate
   1e-2); the better of the two on validation.

Prints each head's validation and test accuracy both ways and the gap in points.

    .venv/bin/python benchmarks/head_ceiling.py -w digits
    .venv/bin/python benchmarks/head_ceiling.py -w fashion_mnist

Uses (and, if missing, trains) the workload's cached static supernet and exit heads, as `codesign explore`
would.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F

from codesign.config.workload import load_workload
from codesign.network.exit_heads import backbone_features, exit_heads_checkpoint
from codesign.network.supernet import (
    Supernet,
    at_resolution,
    default_supernet_dir,
    extreme_candidate,
    static_space,
    supernet_checkpoint,
)
from codesign.runs.setup import prepare_run


@torch.no_grad()
def features(net: Supernet, images: torch.Tensor, spec) -> list[torch.Tensor]:
    """Each stage's output for `spec`, in batches of 512 with batch statistics (as the heads train)."""
    net.train()
    chunks = [
        backbone_features(net, at_resolution(images[b : b + 512], spec.resolution), spec)
        for b in range(0, len(images), 512)
    ]
    return [torch.cat([c[k] for c in chunks]) for k in range(len(chunks[0]))]


@torch.no_grad()
def accuracy(head, x: torch.Tensor, labels: torch.Tensor, branch) -> tuple[float, float]:
    head.eval()
    logits = torch.cat([head(x[b : b + 1024], branch) for b in range(0, len(x), 1024)])
    return float((logits.argmax(-1) == labels).float().mean()), float(F.cross_entropy(logits, labels))


def train_alone(head, x, y, vx, vy, branch, epochs=1000, patience=20) -> tuple[object, int]:
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5, patience=5)
    best, best_state, stale, generator = (
        float("inf"),
        copy.deepcopy(head.state_dict()),
        0,
        torch.Generator().manual_seed(0),
    )
    epoch = 0
    while epoch < epochs:
        epoch += 1
        head.train()
        for batch in torch.randperm(len(y), generator=generator).split(128):
            optimiser.zero_grad()
            F.cross_entropy(head(x[batch], branch), y[batch]).backward()
            optimiser.step()
        loss = accuracy(head, vx, vy, branch)[1]
        scheduler.step(loss)
        if loss < best - 1e-4:
            best, best_state, stale = loss, copy.deepcopy(head.state_dict()), 0
        else:
            stale += 1
            if stale >= patience:
                break
    head.load_state_dict(best_state)
    return head, epoch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-w", "--workload", default="digits")
    parser.add_argument(
        "--tables", default="supernet,candidate", help="which tables: supernet, candidate or both (default)"
    )
    parser.add_argument(
        "--candidate-steps", type=int, default=20_000, help="ceiling of the candidate heads trained alone"
    )
    parser.add_argument(
        "--max-epochs", type=int, default=1000, help="ceiling of the float heads trained alone"
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    workload = load_workload(args.workload)
    setup = prepare_run(workload)
    folder, config, dataset = default_supernet_dir(), workload.supernet, setup.dataset
    backbone = supernet_checkpoint(static_space(setup.space), dataset, config, folder)
    shipped_path = exit_heads_checkpoint(setup.space, dataset, config, backbone, folder)
    shipped = Supernet(setup.space)
    shipped.load_state_dict(torch.load(shipped_path, weights_only=True))
    torch.manual_seed(config.seed)  # the heads' initialisation before any training, seeded as the shipped one
    initial = Supernet(setup.space)
    tables = set(args.tables.split(","))
    print(f"workload {workload.name}: shipped heads {shipped_path.name}")
    gaps = []
    if "supernet" in tables:
        print(
            f"{'sub-network':>11} {'head':>4} {'val shipped':>11} {'val alone':>9} {'test shipped':>12} {'test alone':>10} {'gap (test, pt)':>14} {'epochs':>6}"
        )
        for label, spec in (
            ("largest", extreme_candidate(setup.space, True)),
            ("smallest", extreme_candidate(setup.space, False)),
        ):
            train = features(shipped, dataset.train.images, spec)
            val = features(shipped, dataset.val.images, spec)
            test = features(shipped, dataset.test.images, spec)
            for k in range(len(spec.stages) - 1):
                branch = spec.branch(k)
                start = time.perf_counter()
                alone, epochs = train_alone(
                    copy.deepcopy(initial.heads[str(k)]),
                    train[k],
                    dataset.train.labels,
                    val[k],
                    dataset.val.labels,
                    branch,
                    epochs=args.max_epochs,
                )
                head = shipped.heads[str(k)]
                sv, av = (
                    accuracy(head, val[k], dataset.val.labels, branch)[0],
                    accuracy(alone, val[k], dataset.val.labels, branch)[0],
                )
                st, at = (
                    accuracy(head, test[k], dataset.test.labels, branch)[0],
                    accuracy(alone, test[k], dataset.test.labels, branch)[0],
                )
                gaps.append(100 * (at - st))
                print(
                    f"{label:>11} {k:>4} {100 * sv:10.2f}% {100 * av:8.2f}% {100 * st:11.2f}% {100 * at:9.2f}% "
                    f"{100 * (at - st):14.2f} {epochs:6d}  ({time.perf_counter() - start:.0f} s)"
                )
        print(f"supernet heads: largest gap to the ceiling on test: {max(gaps):.2f} pt")
    if "candidate" in tables:
        candidate_gaps = candidate_table(setup, shipped_path, args.candidate_steps)
        print(
            f"candidate heads: largest gap to the ceiling on test: {max(candidate_gaps):.2f} pt (goal: <= 1 pt)"
        )


def ceiling_heads(model, train, val, config, settings, fresh: bool):
    """The model with its early heads trained alone on its frozen stage outputs for as long as they improve:
    from where they are, or (`fresh`) from a new initialisation, calibrated first."""
    from codesign.network.finetune import calibrate, finetune_heads

    early = [head for name, head in model.heads.items() if name != str(len(model.stages) - 1)]
    if fresh:
        torch.manual_seed(0)
        for head in early:
            for module in head.modules():
                if hasattr(module, "reset_parameters") and module is not head:
                    module.reset_parameters()
        calibrate(model, train, config.calibration_images, only=early)
    finetune_heads(model, train, val, config, settings.augmentation, trained=early)
    return model


def candidate_table(setup, supernet_path, steps: int) -> list[float]:
    """Table 2 (see the module docstring); returns the test gaps in points."""
    import tempfile
    from dataclasses import replace
    from pathlib import Path

    from codesign.evaluation.statistics import cached_exits
    from codesign.network.model import build_model, load_shared_weights

    folder = Path(tempfile.mkdtemp())
    recipe = setup.recipe(folder, folder / "costs.sqlite", supernet_path)
    evaluator = setup.evaluator(recipe)
    settings = evaluator.settings
    long = replace(
        settings.finetune,
        head_steps=steps,
        head_check_steps=50,
        head_patience=10,
        head_train_images=10**9,
        head_learning_rate=1e-3,
    )
    print(
        f"\n{'candidate':>11} {'exit':>4} {'val shipped':>11} {'val alone':>9} {'test shipped':>12} {'test alone':>10} {'gap (test, pt)':>14}"
    )
    gaps = []
    for label, spec in (
        ("largest", extreme_candidate(setup.space, True)),
        ("smallest", extreme_candidate(setup.space, False)),
    ):
        architecture = spec.architecture()
        trained = evaluator.trained(architecture)
        shipped_test = evaluator.test_exits(architecture)
        model = load_shared_weights(build_model(architecture), trained.state_dict)
        resolution = architecture.resolution
        train, val, test = (evaluator.split(n, resolution) for n in ("train", "val", "test"))
        start = time.perf_counter()
        continued = ceiling_heads(model, train, val, long, settings, fresh=False)
        fresh = ceiling_heads(
            load_shared_weights(build_model(architecture), trained.state_dict),
            train, val, replace(long, head_learning_rate=1e-2), settings, fresh=True,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        for k in range(len(architecture.stages) - 1):
            # the ceiling: the better of the two heads trained alone on validation, measured on test
            alone = max((continued, fresh), key=lambda m: cached_exits(m, val, None).correct[k].mean())
            sv, av = trained.val.correct[k].mean(), cached_exits(alone, val, None).correct[k].mean()
            st, at = shipped_test.correct[k].mean(), cached_exits(alone, test, None).correct[k].mean()
            gaps.append(100 * (at - st))
            print(
                f"{label:>11} {k:>4} {100 * sv:10.2f}% {100 * av:8.2f}% {100 * st:11.2f}% {100 * at:9.2f}% "
                f"{100 * (at - st):14.2f}  ({seconds:.0f} s)"
            )
    return gaps


if __name__ == "__main__":
    main()
