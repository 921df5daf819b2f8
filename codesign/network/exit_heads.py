"""Early-exit heads trained on a frozen static backbone (Shallow-Deep Networks style): every exit branch of a
search space learns from the largest backbone's stage outputs, with early stopping on validation, and is kept
beside the supernet it was trained on (`exit_heads_checkpoint`)."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from codesign.data.splits import Dataset, shuffled_batches
from codesign.files import atomic_torch_save
from codesign.machine import usable_cpus
from codesign.network.augment import augment_batch
from codesign.network.settings import Augmentation, SupernetConfig
from codesign.network.supernet import (
    Supernet,
    all_threads,
    at_resolution,
    describe_device,
    extreme_candidate,
    random_candidate,
    static_space,
    supernet_key,
)
from codesign.space import SearchSpace
from codesign.spec import CandidateSpec


def exit_heads_key(
    space: SearchSpace, dataset: str, config: SupernetConfig, augmentation: Augmentation | None
) -> str:
    """The early exit heads trained on the static supernet `supernet_key(static_space(space), ...)`."""
    payload = {
        "backbone": supernet_key(static_space(space), dataset, config, augmentation),
        "space": repr(
            (space.stages, space.branches, space.final_branch, space.resolution, space.resolutions)
        ),
        "head_epochs": config.head_epochs,
        "head_patience": config.head_patience,
        "head_learning_rate": config.head_learning_rate,
        "version": 2,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def backbone_features(net: Supernet, x: torch.Tensor, spec: CandidateSpec) -> list[torch.Tensor]:
    """Each stage's output for the sub-network `spec` (no exit heads)."""
    features = []
    for stage, blocks in zip(spec.stages, net.stages, strict=True):
        for depth in range(stage.depth):
            x = blocks[depth](
                x, stage.block, stage.width, stage.kernel, stage.expansion, stage.stride if depth == 0 else 1
            )
        features.append(x)
    return features


def _head_losses(
    net: Supernet, x: torch.Tensor, y: torch.Tensor, spec: CandidateSpec, distillation: float
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Per early head of sub-network `spec` on one batch (backbone without gradient): (cross-entropy, loss
    trained on: cross-entropy plus `distillation` x KL towards the sub-network's own final exit, correct)."""
    final = len(spec.stages) - 1
    with torch.no_grad():
        features = backbone_features(net, at_resolution(x, spec.resolution), spec)
        soft = F.softmax(net.heads[str(final)](features[final], spec.branch(final)), dim=-1)
    entropies, losses, correct = [], [], []
    for index in range(final):
        logits = net.heads[str(index)](features[index], spec.branch(index))
        entropy = F.cross_entropy(logits, y)
        loss = entropy
        if distillation > 0:
            loss = loss + distillation * F.kl_div(F.log_softmax(logits, dim=-1), soft, reduction="batchmean")
        entropies.append(entropy)
        losses.append(loss)
        correct.append((logits.argmax(dim=-1) == y).sum())
    return entropies, losses, correct


@torch.no_grad()
def _head_validation(
    net: Supernet, images: torch.Tensor, labels: torch.Tensor, specs: list[CandidateSpec]
) -> tuple[list[float], list[float]]:
    """Each early head's validation cross-entropy and accuracy, averaged over the sub-networks `specs`
    (batch statistics, as the heads train and as a calibrated candidate runs)."""
    heads = len(specs[0].stages) - 1
    loss, right = [0.0] * heads, [0.0] * heads
    for spec in specs:
        for begin in range(0, len(labels), 512):
            x, y = images[begin : begin + 512], labels[begin : begin + 512]
            entropies, _, correct = _head_losses(net, x, y, spec, 0.0)
            for k in range(heads):
                loss[k] += float(entropies[k]) * len(y)
                right[k] += float(correct[k])
    count = len(labels) * len(specs)
    return [v / count for v in loss], [v / count for v in right]


def train_exit_heads(
    space: SearchSpace,
    dataset: Dataset,
    config: SupernetConfig,
    backbone_state: dict[str, torch.Tensor],
    progress: Callable[[str], None] | None = None,
    *,
    device: torch.device | None = None,
    augmentation: Augmentation | None = None,
) -> dict[str, torch.Tensor]:
    """The early exit heads trained on a frozen static supernet (Shallow-Deep Networks): per batch, the
    largest, the smallest and `random_subnets` random sub-networks' stage outputs (no gradient into the
    backbone) feed every early head with that sub-network's branch choices; loss: cross-entropy plus, with
    `distillation` > 0, the KL term towards the same sub-network's own final exit.

    Training runs until the heads' mean validation cross-entropy (over the largest, the smallest and
    `random_subnets` fixed random sub-networks) has not fallen for `head_patience` epochs, at most
    `head_epochs`; the learning rate halves after each epoch without improvement; the best epoch's heads
    are kept. Returns `backbone_state` with the early heads replaced (backbone and final head untouched)."""
    device = device or torch.device("cpu")
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = Supernet(space).to(device)
    net.load_state_dict(backbone_state)
    final = len(space.stages) - 1
    heads = [net.heads[str(i)] for i in range(final)]
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    parameters = [p for head in heads for p in head.parameters()]
    for parameter in parameters:
        parameter.requires_grad_(True)
    optimiser = torch.optim.AdamW(parameters, lr=config.head_learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5, patience=0)
    images, labels = dataset.train.images.to(device), dataset.train.labels.to(device)
    val_images, val_labels = dataset.val.images.to(device), dataset.val.labels.to(device)
    largest, smallest = extreme_candidate(space, True), extreme_candidate(space, False)
    fixed = random.Random(config.seed + 1)
    checked = [largest, smallest, *(random_candidate(space, fixed) for _ in range(config.random_subnets))]
    prefixes = tuple(f"heads.{i}." for i in range(final))

    def head_state() -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in net.state_dict().items() if k.startswith(prefixes)}

    best_loss, best_state, best_epoch, stale = float("inf"), head_state(), 0, 0
    best_accuracy: list[float] = []
    for epoch in range(1, config.head_epochs + 1):
        net.train()  # batch statistics, as in supernet training; the backbone's running stats are not kept
        train_loss, seen = [0.0] * final, 0
        for batch in shuffled_batches(len(labels), config.batch_size, generator):
            x, y = augment_batch(images[batch], augmentation, generator), labels[batch]
            optimiser.zero_grad(set_to_none=True)
            specs = [largest, smallest, *(random_candidate(space, rng) for _ in range(config.random_subnets))]
            for spec in specs:
                entropies, losses, _ = _head_losses(net, x, y, spec, config.distillation)
                sum(losses).backward()
                for k in range(final):
                    train_loss[k] += float(entropies[k].detach()) * len(batch) / len(specs)
            optimiser.step()
            seen += len(batch)
        val_loss, val_accuracy = _head_validation(net, val_images, val_labels, checked)
        mean_val = sum(val_loss) / final
        scheduler.step(mean_val)
        if mean_val < best_loss - 1e-4:
            best_loss, best_state, best_epoch, stale = mean_val, head_state(), epoch, 0
            best_accuracy = val_accuracy
        else:
            stale += 1
        if progress is not None:
            progress(
                f"  epoch {epoch}/{config.head_epochs} cross-entropy per head: train "
                + " ".join(f"{v / seen:.3f}" for v in train_loss)
                + " | validation "
                + " ".join(f"{v:.3f}" for v in val_loss)
                + f" | lr {optimiser.param_groups[0]['lr']:.1e}"
            )
        if stale >= config.head_patience:
            break
    if progress is not None:
        progress(
            f"  best epoch {best_epoch} (stopped after {epoch}); validation accuracy per head "
            + " ".join(f"{a:.3f}" for a in best_accuracy)
            + f" (mean over {len(checked)} sub-networks)"
        )
    return {k: (best_state[k] if k.startswith(prefixes) else v.clone()) for k, v in backbone_state.items()}


def exit_heads_checkpoint(
    space: SearchSpace,
    dataset: Dataset,
    config: SupernetConfig,
    backbone: Path,
    folder: Path,
    report: Callable[[str], None] = print,
    *,
    device: torch.device | None = None,
    augmentation: Augmentation | None = None,
) -> Path:
    """The static supernet `backbone` with this space's early exit heads trained on it, in `folder`
    (trained now if missing). Its backbone and final head are the static checkpoint's, bit for bit."""
    key = exit_heads_key(space, dataset.name, config, augmentation)
    path = folder / f"exit-heads-{dataset.name}-{key}.pt"
    if path.is_file():
        report(f"exit heads: reusing {path}")
        return path
    start = time.perf_counter()
    threads = usable_cpus()
    report(
        f"exit heads: training on the frozen static supernet until validation stops improving (at most "
        f"{config.head_epochs} epochs, {describe_device(device, threads)}) -> {path}"
    )
    with all_threads(threads):
        state = train_exit_heads(
            space,
            dataset,
            config,
            torch.load(backbone, map_location="cpu", weights_only=True),
            progress=report,
            device=device,
            augmentation=augmentation,
        )
    atomic_torch_save(state, path)
    report(f"exit heads: trained in {time.perf_counter() - start:.0f} s")
    return path
