"""Joint training of all exits of an architecture, and collection of per-exit logits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from codesign.data.splits import Dataset, Split, shuffled_batches
from codesign.network.augment import augment_batch
from codesign.network.model import EarlyExitNet, build_model
from codesign.network.settings import Augmentation, TrainingConfig
from codesign.spec import CandidateSpec


@dataclass(frozen=True)
class TrainedNetwork:
    architecture: CandidateSpec
    state_dict: dict[str, torch.Tensor]
    train_seconds: float
    epochs: int


def _exit_weights(config: TrainingConfig, num_exits: int) -> list[float]:
    if config.exit_loss_weights is None:
        return [1.0] * num_exits
    if len(config.exit_loss_weights) != num_exits:
        raise ValueError(
            f"exit_loss_weights has {len(config.exit_loss_weights)} entries for {num_exits} exits"
        )
    return list(config.exit_loss_weights)


def train_architecture(
    architecture: CandidateSpec,
    dataset: Dataset,
    config: TrainingConfig,
    progress: Callable[[int, float], None] | None = None,
    *,
    device: torch.device | None = None,
    augmentation: Augmentation | None = None,
) -> TrainedNetwork:
    """Train every exit jointly: loss = sum_i w_i * cross_entropy(exit_i). On `device` (default: the CPU),
    with the training images moved there once; the returned weights are on the CPU."""
    import time

    start = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = device or torch.device("cpu")
    model = build_model(architecture).to(device)
    weights = _exit_weights(config, len(architecture.active_exit_stages))
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps_per_epoch = max(1, (len(dataset.train) + config.batch_size - 1) // config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.learning_rate, total_steps=config.epochs * steps_per_epoch
    )
    loss_fn = nn.CrossEntropyLoss()
    images, labels = dataset.train.images.to(device), dataset.train.labels.to(device)
    for epoch in range(config.epochs):
        model.train()
        total = 0.0
        for batch in shuffled_batches(len(labels), config.batch_size, generator):
            outputs = model(augment_batch(images[batch], augmentation, generator))
            loss = sum(w * loss_fn(out, labels[batch]) for w, out in zip(weights, outputs, strict=True))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            scheduler.step()
            total += loss.item() * len(batch)
        if progress is not None:
            progress(epoch + 1, total / len(labels))
    model.eval()
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return TrainedNetwork(architecture, state, time.perf_counter() - start, config.epochs)


@torch.no_grad()
def exit_logits(model: EarlyExitNet, split: Split, batch_size: int = 512) -> list[np.ndarray]:
    """Logits of every active exit on a split: one N x classes array per exit, earliest first (model and
    split on the same device)."""
    model.eval()
    chunks: list[list[np.ndarray]] = []
    for begin in range(0, len(split), batch_size):
        outputs = model(split.images[begin : begin + batch_size])
        chunks.append([o.cpu().numpy() for o in outputs])
    return [np.concatenate([c[k] for c in chunks]) for k in range(len(chunks[0]))]
