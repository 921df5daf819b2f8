"""Build a quantized early-exit network (Brevitas layers) from a CandidateSpec.

Module names are part of two contracts: ONNX node names start with `/stages.<i>/` for backbone
stage i and `/heads.<i>/` for the exit head after stage i (`codesign.cost.graph` reads them), and
parameter names match the weight-sharing supernet's (`codesign.network.supernet`), so a candidate inherits
its weights by name, sliced to its own sizes.
"""

from __future__ import annotations

import math

import brevitas.nn as qnn
import torch
from torch import nn

from codesign.network.blocks import BLOCKS
from codesign.network.layers import ConvBNAct
from codesign.spec import CandidateSpec, ExitBranch, StageSpec


def make_stage(cin: int, stage: StageSpec) -> nn.Sequential:
    block = BLOCKS[stage.block]
    return nn.Sequential(
        *(
            block.quantized(cin if i == 0 else stage.width, stage, stage.stride if i == 0 else 1)
            for i in range(stage.depth)
        )
    )


def exit_pool_kernel(size: int, grid: int) -> int | None:
    """Kernel (= stride) of the average pool that maps size x size to grid x grid; None: adaptive pooling.

    Adaptive pooling with overlapping windows (e.g. 7x7 -> 2x2) cannot be exported to ONNX, so
    non-divisible sizes use non-overlapping windows of ceil(size / grid) with a partial last window.
    """
    if size % grid == 0:
        return None
    kernel = math.ceil(size / grid)
    if math.ceil((size - kernel) / kernel) + 1 != grid:
        raise ValueError(f"cannot pool a {size}x{size} feature map to {grid}x{grid} with equal windows")
    return kernel


def head_feature_size(size: int, branch: ExitBranch) -> int:
    """Side of the feature map an exit head pools: its stage's, halved by a strided first conv."""
    return feature_map_sizes(size, [branch.stride])[0] if branch.convs else size


def exit_pool(size: int, grid: int) -> nn.Module:
    kernel = exit_pool_kernel(size, grid)
    return (
        nn.AdaptiveAvgPool2d(grid) if kernel is None else nn.AvgPool2d(kernel, stride=kernel, ceil_mode=True)
    )


class ExitHead(nn.Module):
    """Exit branch: optional conv layers, average pool to pool x pool, requantize, linear classifier."""

    def __init__(
        self,
        cin: int,
        branch: ExitBranch,
        num_classes: int,
        weight_bits: int,
        act_bits: int,
        feature_size: int,
    ):
        super().__init__()
        self.grid = branch.pool
        layers = []
        channels = cin
        for index in range(branch.convs):
            stride = branch.stride if index == 0 else 1
            layers.append(ConvBNAct(channels, branch.channels, branch.kernel, stride, weight_bits, act_bits))
            channels = branch.channels
        self.convs = nn.Sequential(*layers)
        self.pool = exit_pool(head_feature_size(feature_size, branch), branch.pool)
        self.quant = qnn.QuantIdentity(bit_width=act_bits)
        self.flatten = nn.Flatten()
        self.fc = qnn.QuantLinear(
            channels * branch.pool * branch.pool, num_classes, bias=True, weight_bit_width=weight_bits
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.learned_part(self.fixed_part(x))

    def fixed_part(self, x: torch.Tensor) -> torch.Tensor:
        """What comes before the head's first learnable layer: its pooling when it has no convs (nothing
        learns there, so a head fine-tuned on cached features pools them once instead of every step)."""
        return x if len(self.convs) else self.pool(x)

    def learned_part(self, x: torch.Tensor) -> torch.Tensor:
        """The rest of the head, from the output of `fixed_part`."""
        if len(self.convs):
            x = self.pool(self.convs(x))
        return self.fc(self.flatten(self.quant(x)))


class EarlyExitNet(nn.Module):
    """Backbone stages with exit heads after the stages the spec switches on.

    `forward` returns the logits of every active exit, earliest first; the last is the final classifier.
    """

    def __init__(self, spec: CandidateSpec):
        super().__init__()
        self.spec = spec
        self.input_quant = qnn.QuantIdentity(bit_width=spec.stages[0].act_bits)
        stages = []
        channels = spec.in_channels
        for stage in spec.stages:
            stages.append(make_stage(channels, stage))
            channels = stage.width
        self.stages = nn.ModuleList(stages)
        sizes = feature_sizes(spec)
        self.heads = nn.ModuleDict(
            {
                str(i): ExitHead(
                    spec.stages[i].width,
                    spec.branch(i),
                    spec.num_classes,
                    *spec.head_bits(i),
                    sizes[i],
                )
                for i in spec.active_exit_stages
            }
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.input_quant(x)
        outputs = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if str(index) in self.heads:
                outputs.append(self.heads[str(index)](x))
        return tuple(outputs)


def feature_map_sizes(resolution: int, strides: list[int]) -> list[int]:
    """Feature-map side after each stage (padding k//2: a stride-s conv maps n to ceil(n / s))."""
    sizes, size = [], resolution
    for stride in strides:
        size = math.ceil(size / stride)
        sizes.append(size)
    return sizes


def feature_sizes(spec: CandidateSpec) -> list[int]:
    return feature_map_sizes(spec.resolution, [stage.stride for stage in spec.stages])


def build_model(spec: CandidateSpec) -> EarlyExitNet:
    return EarlyExitNet(spec)


def load_shared_weights(model: EarlyExitNet, state_dict: dict[str, torch.Tensor]) -> EarlyExitNet:
    """Load weights trained on the full architecture into a candidate that may have fewer heads."""
    kept_heads = {f"heads.{name}." for name in model.heads}
    selected = {
        key: value
        for key, value in state_dict.items()
        if not key.startswith("heads.") or any(key.startswith(prefix) for prefix in kept_heads)
    }
    model.load_state_dict(selected)
    model.eval()
    return model
