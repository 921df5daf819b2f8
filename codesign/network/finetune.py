"""Turn inherited float weights into a working quantized candidate, and fine-tune it.

- `calibrate`: batch-norm statistics recomputed for the candidate's own sub-network (they differ
  from the supernet's), then Brevitas activation scales calibrated on training images.
- `finetune`: quantization-aware training of the exit heads only (cheap, used for every candidate
  of a search) or of the whole network (used for the networks a search finally returns).
"""

from __future__ import annotations

import time
from contextlib import ExitStack

import torch
from torch import nn

from codesign.data.splits import Split, shuffled_batches
from codesign.network.augment import augment_batch
from codesign.network.model import EarlyExitNet
from codesign.network.settings import Augmentation, FinetuneConfig


@torch.no_grad()
def calibrate(
    model: EarlyExitNet,
    split: Split,
    images: int,
    batch_size: int = 128,
    only: list[nn.Module] | None = None,
) -> EarlyExitNet:
    """`only`: calibrate these parts (e.g. exit heads) and leave every other part exactly as it is."""
    from brevitas.graph.calibrate import calibration_mode

    parts = only if only is not None else [model]
    subset = split.images[: min(images, len(split))]
    norms = [m for part in parts for m in part.modules() if isinstance(m, nn.BatchNorm2d)]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None  # cumulative average over the calibration batches
    model.eval()
    for part in parts:
        part.train()
    for begin in range(0, len(subset), batch_size):
        model(subset[begin : begin + batch_size])
    for module in norms:
        module.momentum = 0.1
    model.eval()
    with ExitStack() as stack:
        for part in parts:
            stack.enter_context(calibration_mode(part))
        for begin in range(0, len(subset), batch_size):
            model(subset[begin : begin + batch_size])
    model.eval()
    return model


def finetune(
    model: EarlyExitNet,
    split: Split,
    steps: int,
    config: FinetuneConfig,
    heads_only: bool,
    augmentation: Augmentation | None = None,
    trained: list[nn.Module] | None = None,
) -> float:
    """Joint exit-loss QAT for `steps` steps; returns seconds spent. Batch norms stay frozen (eval mode).
    Model and split on the same device. `heads_only`: only the exit heads learn; `trained`: only these
    parts learn (e.g. the early exit heads on a frozen static network)."""
    if steps <= 0:
        return 0.0
    start = time.perf_counter()
    learning = trained if trained is not None else [model.heads] if heads_only else [model]
    parameters = [p for part in learning for p in part.parameters()]
    learning_ids = {id(p) for p in parameters}
    frozen = [p for p in model.parameters() if id(p) not in learning_ids and p.requires_grad]
    for parameter in frozen:  # no backward pass through the backbone
        parameter.requires_grad_(False)
    optimiser = torch.optim.Adam(parameters, lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    loss_fn = nn.CrossEntropyLoss()
    model.eval()  # frozen BN statistics, quantizers in inference behaviour with gradients flowing (STE)
    done = 0
    while done < steps:
        for batch in shuffled_batches(len(split), config.batch_size, generator, drop_last=True):
            outputs = model(augment_batch(split.images[batch], augmentation, generator))
            loss = sum(loss_fn(out, split.labels[batch]) for out in outputs)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            done += 1
            if done >= steps:
                break
    for parameter in frozen:
        parameter.requires_grad_(True)
    model.eval()
    return time.perf_counter() - start
