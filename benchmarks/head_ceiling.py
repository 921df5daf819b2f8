"""How far the shipped exit-head training is from what each head can reach on its frozen features.

The shipped training (`network.supernet.train_exit_heads`) trains every early head of the supernet at once,
shared by all sub-networks, until the heads' validation loss stops falling. The ceiling: for one
sub-network at a time (the largest and the smallest), each early head trained alone, from the same
initialisation, on that sub-network's frozen stage outputs (computed once), with Adam until its
validation loss has not fallen for 20 epochs (learning rate halved after each 5 without improvement),
at most 1,000 epochs. Prints each head's validation and test accuracy both ways and the gap in points.

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
from codesign.network.supernet import (
    Supernet,
    _at,
    _backbone_features,
    _extreme,
    default_supernet_dir,
    exit_heads_checkpoint,
    static_space,
    supernet_checkpoint,
)
from codesign.runs.setup import prepare_run


@torch.no_grad()
def features(net: Supernet, images: torch.Tensor, spec) -> list[torch.Tensor]:
    """Each stage's output for `spec`, in batches of 512 with batch statistics (as the heads train)."""
    net.train()
    chunks = [
        _backbone_features(net, _at(images[b : b + 512], spec.resolution), spec)
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
    args = parser.parse_args()
    torch.manual_seed(0)
    workload = load_workload(args.workload)
    setup = prepare_run(workload)
    folder, config, dataset = default_supernet_dir(), workload.supernet, setup.dataset
    backbone = supernet_checkpoint(static_space(setup.space), dataset, config, folder)
    shipped_path = exit_heads_checkpoint(setup.space, dataset, config, backbone, folder)
    shipped = Supernet(setup.space)
    shipped.load_state_dict(torch.load(shipped_path, weights_only=True))
    initial = Supernet(
        setup.space
    )  # the heads' initialisation before any training (seeded as the shipped one)
    torch.manual_seed(config.seed)
    initial = Supernet(setup.space)
    print(f"workload {workload.name}: shipped heads {shipped_path.name}")
    print(
        f"{'sub-network':>11} {'head':>4} {'val shipped':>11} {'val alone':>9} {'test shipped':>12} {'test alone':>10} {'gap (test, pt)':>14} {'epochs':>6}"
    )
    gaps = []
    for label, spec in (("largest", _extreme(setup.space, True)), ("smallest", _extreme(setup.space, False))):
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
    print(f"largest gap to the ceiling on test: {max(gaps):.2f} pt (goal: <= 1 pt)")


if __name__ == "__main__":
    main()
