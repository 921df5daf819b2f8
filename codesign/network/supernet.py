"""Weight-sharing supernet: one float network holding the largest choice of every stage, block and exit
branch; every candidate of a search space is a slice of it (OFA/BigNAS style).

- Elastic depth: a stage with depth d uses its first d blocks.
- Elastic width / expansion / branch channels: the first channels of each weight tensor.
- Elastic kernel: the centre of the largest kernel.
- Block type per stage: the supernet block holds every block type's layers under distinct names.
- Exit branches: one classifier per pooling grid (`fc_p1`, `fc_p2`, ...), since the flattened layout differs.

Training uses the sandwich rule: each step trains the largest, the smallest and two random candidates
with the joint weighted exit loss, plus optional distillation from the largest network's final exit.
`exit_gradient` below 1 scales the early exits' gradient where it enters the backbone.
Parameter names equal those of `codesign.network.model`, so `inherit` copies a candidate's weights by name.
Weights are float; a quantized candidate inherits them and is calibrated (`codesign.network.finetune`).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from codesign.data.splits import Dataset, shuffled_batches
from codesign.files import atomic_torch_save, user_cache_dir
from codesign.machine import usable_cpus
from codesign.network.augment import augment_batch
from codesign.network.blocks import BLOCKS
from codesign.network.layers import ElasticConvBN
from codesign.network.model import exit_pool_kernel
from codesign.network.settings import Augmentation, SupernetConfig
from codesign.space import SearchSpace
from codesign.spec import CandidateSpec, ExitBranch


class ElasticBlock(nn.Module):
    """The layers of every block type the stage may use, named as in `codesign.network.layers`; the block
    type chosen per candidate runs on them (see `codesign.network.blocks`)."""

    def __init__(self, cin: int, width: int, kernel: int, expansion: int, blocks: set[str]):
        super().__init__()
        for name, block in BLOCKS.items():  # registry order: layer creation order fixes the initial weights
            if name in blocks:
                block.add_elastic_layers(self, cin, width, kernel, expansion)

    def forward(
        self, x: torch.Tensor, block: str, width: int, kernel: int, expansion: int, stride: int
    ) -> torch.Tensor:
        return BLOCKS[block].elastic_forward(self, x, width, kernel, expansion, stride)


class ElasticHead(nn.Module):
    def __init__(
        self, cin: int, convs: int, channels: int, kernel: int, pools: tuple[int, ...], num_classes: int
    ):
        super().__init__()
        self.convs = nn.ModuleList(
            ElasticConvBN(cin if i == 0 else channels, channels, kernel) for i in range(convs)
        )
        widest = max(cin, channels)
        for pool in pools:
            setattr(self, f"fc_p{pool}", nn.Linear(widest * pool * pool, num_classes))

    def forward(self, x: torch.Tensor, branch: ExitBranch) -> torch.Tensor:
        for index, layer in enumerate(list(self.convs)[: branch.convs]):
            x = layer(x, branch.channels, branch.kernel, branch.stride if index == 0 else 1, act=True)
        pool = branch.pool
        kernel = exit_pool_kernel(
            x.shape[-1], pool
        )  # the same pooling as the candidate's ONNX-exportable head
        pooled = (
            F.adaptive_avg_pool2d(x, pool)
            if kernel is None
            else F.avg_pool2d(x, kernel, kernel, ceil_mode=True)
        )
        x = torch.flatten(pooled, 1)
        fc = getattr(self, f"fc_p{pool}")
        return F.linear(x, fc.weight[:, : x.shape[1]], fc.bias)


def default_supernet_dir() -> Path:
    """Trained supernets, by default: `supernets/` in the user cache folder (`files.user_cache_dir`), apart
    from the layer-cost cache so that choosing another of one never moves the other."""
    return user_cache_dir() / "supernets"


def _head_choices(space: SearchSpace, index: int) -> dict[str, tuple[int, ...]]:
    """Branch choices of the head after stage `index`: the final head is fixed; an early exit's come from
    the space (all of them, also when a static space has no exit genes)."""
    fields = ("convs", "channels", "kernel", "pool")
    if index == len(space.stages) - 1:
        return {f: (getattr(space.final_branch, f),) for f in fields}
    return {f: getattr(space.branches, f) for f in fields}


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the gradient flowing back through it is multiplied by `scale`."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale  # type: ignore[attr-defined]
        return x.view_as(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None  # type: ignore[attr-defined]


class Supernet(nn.Module):
    def __init__(self, space: SearchSpace, exit_gradient: float = 1.0):
        super().__init__()
        self.space = space
        self.exit_gradient = exit_gradient
        stages = []
        heads = {}
        cin = space.in_channels
        for index, stage in enumerate(space.stages):
            width, kernel = max(stage.width), max(stage.kernel)
            expansion, blocks = max(stage.expansion), set(stage.block)
            stages.append(
                nn.ModuleList(
                    ElasticBlock(cin if d == 0 else width, width, kernel, expansion, blocks)
                    for d in range(max(stage.depth))
                )
            )
            choices = _head_choices(space, index)
            heads[str(index)] = ElasticHead(
                width,
                max(choices["convs"]),
                max(choices["channels"]),
                max(choices["kernel"]),
                tuple(sorted(set(choices["pool"]))),
                space.num_classes,
            )
            cin = width
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleDict(heads)

    def forward(self, x: torch.Tensor, spec: CandidateSpec) -> list[torch.Tensor]:
        outputs = []
        for index, (stage, blocks) in enumerate(zip(spec.stages, self.stages, strict=True)):
            for depth in range(stage.depth):
                x = blocks[depth](
                    x,
                    stage.block,
                    stage.width,
                    stage.kernel,
                    stage.expansion,
                    stage.stride if depth == 0 else 1,
                )
            if index in spec.active_exit_stages:
                features = x
                if self.training and self.exit_gradient != 1.0 and index != len(spec.stages) - 1:
                    features = _ScaleGradient.apply(x, self.exit_gradient)
                outputs.append(self.heads[str(index)](features, spec.branch(index)))
        return outputs


def inherit(candidate: nn.Module, supernet_state: dict[str, torch.Tensor]) -> nn.Module:
    """Copy every weight the candidate shares with the supernet, sliced to the candidate's sizes.

    Quantizer parameters are not in the supernet: they are calibrated afterwards.
    """
    own = candidate.state_dict()
    pools = {name: head.grid for name, head in candidate.heads.items()}  # type: ignore[attr-defined]
    loaded = {}
    for key, target in own.items():
        source_key = key
        parts = key.split(".")
        if parts[0] == "heads" and parts[2] == "fc":
            pool = pools[parts[1]]
            source_key = ".".join([*parts[:2], f"fc_p{pool}", *parts[3:]])
        source = supernet_state.get(source_key)
        if source is None:
            continue
        if source.shape == target.shape:
            loaded[key] = source.clone()
            continue
        sliced = source
        for dim, size in enumerate(target.shape):
            if dim >= 2 and sliced.dim() == 4:  # kernel: take the centre
                start = (sliced.shape[dim] - size) // 2
                sliced = sliced.narrow(dim, start, size)
            else:
                sliced = sliced.narrow(dim, 0, size)
        loaded[key] = sliced.clone()
    candidate.load_state_dict(loaded, strict=False)
    return candidate


def extreme_candidate(space: SearchSpace, largest: bool) -> CandidateSpec:
    pick = (lambda g: len(g.choices) - 1) if largest else (lambda g: 0)
    indices = []
    for gene in space.genes:
        if gene.name.endswith(".on"):
            indices.append(1)  # every exit on: all heads train
        elif gene.name in ("resolution",):
            indices.append(len(gene.choices) - 1)
        else:
            index = pick(gene)
            # largest network: order choices by value where they are numbers
            values = gene.choices
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                descending = gene.name.endswith(".stride")  # the largest head convolves at full size
                ordered = sorted(range(len(values)), key=lambda i: values[i], reverse=descending)
                index = ordered[-1] if largest else ordered[0]
            indices.append(index)
    return _trained_part(space, space.decode(indices))


def _trained_part(space: SearchSpace, spec: CandidateSpec) -> CandidateSpec:
    """What a training step runs: every exit head, or none in a static space (its backbones are then
    trained as static networks, without the exits' losses)."""
    return spec.architecture() if space.early_exits else spec


def _shapes_weights(gene_name: str) -> bool:
    """Genes that change the network's weights (not thresholds, policy, tuning, hardware or cores)."""
    head_bits = gene_name.startswith("exit") and gene_name.endswith(("weight_bits", "act_bits"))
    return not (
        gene_name.endswith(".fraction")
        or gene_name in ("policy", "accuracy_drop")
        or gene_name.startswith(("hw.", "core."))
        or head_bits  # a float supernet has no bit widths (stage bits are drawn as they always were)
    )


def random_candidate(space: SearchSpace, rng: random.Random) -> CandidateSpec:
    """A random sub-network; only weight-shaping genes are drawn, so spaces with the same supernet key
    train on the same sequence of sub-networks."""
    indices = [rng.randrange(len(g.choices)) if _shapes_weights(g.name) else 0 for g in space.genes]
    return _trained_part(space, space.decode(indices))


def at_resolution(x: torch.Tensor, resolution: int) -> torch.Tensor:
    if x.shape[-1] == resolution:
        return x
    return F.interpolate(
        x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False
    )


def supernet_key(
    space: SearchSpace, dataset: str, config: SupernetConfig, augmentation: Augmentation | None = None
) -> str:
    # Only what shapes the weights: thresholds, policies, tuning, hardware and core genes do not.
    shape = (space.stages, space.branches, space.final_branch, space.num_classes, space.in_channels)
    payload = {
        "space": repr((*shape, space.resolution, space.resolutions)),
        "dataset": dataset,
        "config": asdict(config),
        "version": 3,
    }
    if config.exit_gradient == 1.0:  # the default keeps the keys of supernets trained before it existed
        del payload["config"]["exit_gradient"]
    for name in (
        "exit_training",
        "head_epochs",
        "head_patience",
        "head_learning_rate",
    ):  # they train exit heads apart (`exit_heads_key`), or not at all
        del payload["config"][name]
    if augmentation is not None and augmentation.active:  # only then: other supernets keep their keys
        payload["augmentation"] = asdict(augmentation)
    if not space.early_exits:  # trained without exit heads: must never stand in for an early-exit supernet
        payload["static"] = True
    elif space.branches.stride != (1,):  # strided heads train differently (not in the space's repr)
        payload["exit_stride"] = list(space.branches.stride)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def supernet_step(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    teacher: CandidateSpec,
    subnets: list[CandidateSpec],
    distillation: float,
) -> float:
    """One batch of supernet training (gradients accumulated, no optimiser step): the largest network
    (`teacher`) on the labels, then each sub-network on the labels and, with `distillation` > 0, towards the
    teacher's final exit. Returns the teacher's loss."""
    teacher_outputs = net(at_resolution(x, teacher.resolution), teacher)
    loss = sum(F.cross_entropy(o, y) for o in teacher_outputs)
    loss.backward()
    soft = F.softmax(teacher_outputs[-1].detach(), dim=-1)
    for spec in subnets:
        outputs = net(at_resolution(x, spec.resolution), spec)
        sub_loss = sum(F.cross_entropy(o, y) for o in outputs)
        if distillation > 0:
            sub_loss = sub_loss + distillation * sum(
                F.kl_div(F.log_softmax(o, dim=-1), soft, reduction="batchmean") for o in outputs
            )
        sub_loss.backward()
    return float(loss.item())


def train_supernet(
    space: SearchSpace,
    dataset: Dataset,
    config: SupernetConfig,
    progress: Callable[[int, float], None] | None = None,
    *,
    device: torch.device | None = None,
    augmentation: Augmentation | None = None,
) -> Supernet:
    """Train the supernet on `device` (default: the CPU; the training images are moved there once)."""
    device = device or torch.device("cpu")
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = Supernet(space, config.exit_gradient).to(device)
    largest, smallest = extreme_candidate(space, True), extreme_candidate(space, False)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    images, labels = dataset.train.images.to(device), dataset.train.labels.to(device)
    steps = config.epochs * max(1, (len(labels) + config.batch_size - 1) // config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.learning_rate, total_steps=steps)
    for epoch in range(config.epochs):
        net.train()
        total = 0.0
        for batch in shuffled_batches(len(labels), config.batch_size, generator):
            x, y = augment_batch(images[batch], augmentation, generator), labels[batch]
            optimiser.zero_grad(set_to_none=True)
            subnets = [smallest, *(random_candidate(space, rng) for _ in range(config.random_subnets))]
            loss = supernet_step(net, x, y, largest, subnets, config.distillation)
            optimiser.step()
            scheduler.step()
            total += loss * len(batch)
        if progress is not None:
            progress(epoch + 1, total / len(labels))
    net.eval()
    return net


def describe_device(device: torch.device | None, threads: int) -> str:
    if device is not None and device.type == "cuda":
        return f"on {torch.cuda.get_device_name(device)}"
    return f"{threads} CPU threads"


@contextmanager
def all_threads(threads: int) -> Iterator[None]:
    """One-off training before anything else runs (candidate workers and ZigZag start afterwards) gets every
    core rather than the one thread candidates are evaluated with."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def supernet_checkpoint(
    space: SearchSpace,
    dataset: Dataset,
    config: SupernetConfig,
    folder: Path,
    report: Callable[[str], None] = print,
    *,
    device: torch.device | None = None,
    augmentation: Augmentation | None = None,
) -> Path:
    """The supernet checkpoint for this space/dataset/config in `folder`, trained now (on `device`) if it
    is not there yet."""
    key = supernet_key(space, dataset.name, config, augmentation)
    path = folder / f"supernet-{dataset.name}-{key}.pt"
    if path.is_file():
        report(f"supernet: reusing {path}")
        return path
    start = time.perf_counter()
    threads = usable_cpus()
    report(
        f"supernet: training once for this space ({config.epochs} epochs, {len(dataset.train)} images, "
        f"{describe_device(device, threads)}) -> {path}"
    )
    with all_threads(threads):
        net = train_supernet(
            space,
            dataset,
            config,
            progress=lambda e, loss: report(f"  epoch {e}/{config.epochs} loss {loss:.3f}"),
            device=device,
            augmentation=augmentation,
        )
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    atomic_torch_save(state, path)
    report(f"supernet: trained in {time.perf_counter() - start:.0f} s")
    return path


def static_space(space: SearchSpace) -> SearchSpace:
    """The same space with every exit off: its supernet is the backbone every early-exit network shares."""
    return replace(space, early_exits=False)
