"""Turn inherited float weights into a working quantized candidate, and fine-tune it.

- `calibrate`: batch-norm statistics recomputed for the candidate's own sub-network (they differ
  from the supernet's), then Brevitas activation scales calibrated on training images.
- `finetune`: quantization-aware training of the exit heads only or of the whole network (used for the
  networks a search finally returns) for a number of steps.
- `finetune_heads`: the exit heads' fine-tuning of every candidate of a search, until the validation loss
  stops falling.
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
    """`only`: calibrate these parts (e.g. exit heads) and leave every other part exactly as it is. When
    they are exit heads, the frozen backbone runs once per batch, only as far as they need, and the heads
    twice on its outputs: the same batches and values as running the whole network twice."""
    from brevitas.graph.calibrate import calibration_mode

    parts = only if only is not None else [model]
    subset = split.images[: min(images, len(split))]
    norms = [m for part in parts for m in part.modules() if isinstance(m, nn.BatchNorm2d)]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None  # cumulative average over the calibration batches
    batches = [subset[begin : begin + batch_size] for begin in range(0, len(subset), batch_size)]
    heads = _heads_among(model, only)
    model.eval()
    if heads is not None:  # the backbone in inference behaviour, as when the whole network runs below
        features = [_stage_outputs(model, batch, set(heads)) for batch in batches]

        def run(index: int) -> None:
            for stage, head in heads.items():
                head(features[index][stage])
    else:

        def run(index: int) -> None:
            model(batches[index])

    model.eval()
    for part in parts:
        part.train()
    for index in range(len(batches)):
        run(index)
    for module in norms:
        module.momentum = 0.1
    model.eval()
    with ExitStack() as stack:
        for part in parts:
            stack.enter_context(calibration_mode(part))
        for index in range(len(batches)):
            run(index)
    model.eval()
    return model


def _heads_among(model: nn.Module, parts: list[nn.Module] | None) -> dict[int, nn.Module] | None:
    """`parts` by the stage each reads, when every one is an exit head of `model` (else None)."""
    if not parts or not isinstance(model, EarlyExitNet):
        return None
    stage_of = {id(head): int(name) for name, head in model.heads.items()}
    if any(id(part) not in stage_of for part in parts):
        return None
    return {stage_of[id(part)]: part for part in sorted(parts, key=lambda part: stage_of[id(part)])}


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
    # foreach: the same per-tensor arithmetic (bit for bit, tested) in one call instead of a Python loop
    optimiser = torch.optim.Adam(parameters, lr=config.learning_rate, foreach=True)
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


@torch.no_grad()
def stage_features(model: EarlyExitNet, images: torch.Tensor, stages: set[int]) -> dict[int, torch.Tensor]:
    """The outputs of the backbone stages `stages` (inference behaviour), computed in batches."""
    model.eval()
    chunks = [
        _stage_outputs(model, images[begin : begin + 512], stages) for begin in range(0, len(images), 512)
    ]
    return {s: torch.cat([chunk[s] for chunk in chunks]) for s in stages}


class StageOutputs:
    """Backbone stage outputs shared by consecutive head fine-tunings on one frozen backbone (a static
    network's final head, then the same backbone's early heads): each split's images run through the
    backbone once, for every stage in `stages` as well as the stages asked, and are kept while they take at
    most `budget_bytes`."""

    def __init__(self, stages: set[int] | None = None, budget_bytes: int = 1 << 29):
        self.stages = set(stages or ())
        self.budget_bytes = budget_bytes
        self._kept: dict[str, tuple[torch.Tensor, dict[int, torch.Tensor]]] = {}

    def of(
        self, model: EarlyExitNet, name: str, images: torch.Tensor, stages: set[int]
    ) -> dict[int, torch.Tensor]:
        """The outputs of `stages` for the split `name` (`images`), computed now or kept from before."""
        kept = self._kept.get(name)
        if kept is not None and stages <= kept[1].keys() and torch.equal(kept[0], images):
            return {s: kept[1][s] for s in stages}
        outputs = stage_features(model, images, stages | self.stages)
        if sum(t.numel() * t.element_size() for t in outputs.values()) <= self.budget_bytes:
            self._kept[name] = (images, outputs)
        return {s: outputs[s] for s in stages}


@torch.no_grad()
def _stage_outputs(model: EarlyExitNet, x: torch.Tensor, stages: set[int]) -> dict[int, torch.Tensor]:
    """The outputs of the backbone stages `stages` for one batch, running no stage past the last of them."""
    outputs = {}
    x = model.input_quant(x)
    for index, stage in enumerate(model.stages):
        x = stage(x)
        if index in stages:
            outputs[index] = x.detach()
        if index == max(stages):
            break
    return outputs


@torch.no_grad()
def _fixed_inputs(heads: dict[int, nn.Module], features: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    """Each head's `fixed_part` applied to its stage's cached features (in batches): what its learned part
    reads at every step."""
    return {
        s: torch.cat([head.fixed_part(features[s][b : b + 512]) for b in range(0, len(features[s]), 512)])
        for s, head in heads.items()
    }


def _head_loss(
    heads: dict[int, nn.Module], inputs: dict[int, torch.Tensor], labels: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy of the heads, each on its `_fixed_inputs`."""
    losses = [nn.functional.cross_entropy(head.learned_part(inputs[s]), labels) for s, head in heads.items()]
    return sum(losses) / len(losses)  # type: ignore[return-value]


@torch.no_grad()
def _validation_loss(model: EarlyExitNet, split: Split) -> float:
    """Mean cross-entropy over the model's exits on `split` (inference behaviour)."""
    model.eval()
    total, count = 0.0, 0
    for begin in range(0, len(split), 512):
        outputs = model(split.images[begin : begin + 512])
        labels = split.labels[begin : begin + 512]
        total += sum(float(nn.functional.cross_entropy(o, labels, reduction="sum")) for o in outputs)
        count += len(labels) * len(outputs)
    return total / max(1, count)


def finetune_heads(
    model: EarlyExitNet,
    train: Split,
    val: Split,
    config: FinetuneConfig,
    augmentation: Augmentation | None = None,
    trained: list[nn.Module] | None = None,
    shared: StageOutputs | None = None,
) -> float:
    """Quantization-aware fine-tuning of the exit heads (`trained`: only these; default every head) on the
    frozen backbone until their mean validation loss stops falling: `config.head_check_steps` steps at a
    time, at most `config.head_steps`, the learning rate halved after each check without improvement,
    stopped after `config.head_patience` such checks; the best check's weights are kept (the state before
    any step counts as one). The backbone's stage outputs are computed once (on a random subset of at most
    `head_train_images` training images and the first `head_validation_images` validation images) and the
    heads learn on them (`shared`: kept there for the next fine-tuning on the same frozen backbone, and taken
    from there); with augmentation, every batch runs through the backbone instead. Returns seconds spent."""
    if config.head_steps <= 0:
        return 0.0
    start = time.perf_counter()
    parts = trained if trained is not None else list(model.heads.values())
    heads = {int(name): head for name, head in model.heads.items() if any(head is p for p in parts)}
    val = Split(val.images[: config.head_validation_images], val.labels[: config.head_validation_images])
    cached = augmentation is None or not augmentation.active
    generator = torch.Generator().manual_seed(config.seed)
    if cached:
        # the images the steps would draw: a random subset when the split is larger than they need
        needed = min(config.head_steps * config.batch_size, config.head_train_images)
        order = torch.randperm(len(train), generator=generator)[:needed].to(train.labels.device)
        train = Split(train.images[order], train.labels[order])
        outputs = shared or StageOutputs()
        train_features = _fixed_inputs(heads, outputs.of(model, "train", train.images, set(heads)))
        val_features = _fixed_inputs(heads, outputs.of(model, "val", val.images, set(heads)))

    def validation_loss() -> float:
        with torch.no_grad():
            if cached:
                return float(_head_loss(heads, val_features, val.labels))
            return _validation_loss(model, val)

    def snapshot() -> list[dict[str, torch.Tensor]]:
        return [{k: v.detach().clone() for k, v in head.state_dict().items()} for head in heads.values()]

    parameters = [p for head in heads.values() for p in head.parameters()]
    learning_ids = {id(p) for p in parameters}
    frozen = [p for p in model.parameters() if id(p) not in learning_ids and p.requires_grad]
    for parameter in frozen:  # no backward pass into the backbone or the other heads
        parameter.requires_grad_(False)
    optimiser = torch.optim.Adam(parameters, lr=config.head_learning_rate, foreach=True)  # as in `finetune`
    model.eval()  # frozen BN statistics, quantizers in inference behaviour with gradients flowing (STE)
    best_loss, best_state, stale, done = validation_loss(), snapshot(), 0, 0
    chunk = max(1, config.head_check_steps)
    batches = iter(())
    while done < config.head_steps and stale < config.head_patience:
        for _ in range(min(chunk, config.head_steps - done)):
            batch = next(batches, None)
            if batch is None:
                batches = iter(
                    shuffled_batches(
                        len(train), config.batch_size, generator, drop_last=len(train) >= config.batch_size
                    )
                )
                batch = next(batches)
            labels = train.labels[batch]
            if cached:
                loss = _head_loss(heads, {s: f[batch] for s, f in train_features.items()}, labels)
            else:
                outputs = model(augment_batch(train.images[batch], augmentation, generator))
                loss = sum(nn.functional.cross_entropy(o, labels) for o in outputs)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            done += 1
        loss_now = validation_loss()
        if loss_now < best_loss - 1e-4:
            best_loss, best_state, stale = loss_now, snapshot(), 0
        else:
            stale += 1
            for group in optimiser.param_groups:
                group["lr"] /= 2
    for head, state in zip(heads.values(), best_state, strict=True):
        head.load_state_dict(state)
    for parameter in frozen:
        parameter.requires_grad_(True)
    model.eval()
    return time.perf_counter() - start
