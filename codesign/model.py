"""Build a quantized early-exit network (Brevitas layers) from a CandidateSpec.

Module names are part of the contract with `codesign.layers`: ONNX node names start with
`/stages.<i>/` for backbone stage i and `/heads.<i>/` for the exit head placed after stage i.
"""

from __future__ import annotations

import brevitas.nn as qnn
import torch
from torch import nn

from codesign.spec import CandidateSpec, StageSpec


class ConvBlock(nn.Sequential):
    """Quantized conv -> batch norm -> quantized ReLU (the ReLU's quantizer sets the activation bits)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, stride: int, weight_bits: int, act_bits: int
    ):
        super().__init__(
            qnn.QuantConv2d(
                in_channels,
                out_channels,
                kernel,
                stride=stride,
                padding=kernel // 2,
                bias=False,
                weight_bit_width=weight_bits,
            ),
            nn.BatchNorm2d(out_channels),
            qnn.QuantReLU(bit_width=act_bits),
        )


def make_stage(in_channels: int, stage: StageSpec) -> nn.Sequential:
    blocks = []
    for block_index in range(stage.depth):
        blocks.append(
            ConvBlock(
                in_channels if block_index == 0 else stage.width,
                stage.width,
                stage.kernel,
                stage.stride if block_index == 0 else 1,
                stage.weight_bits,
                stage.act_bits,
            )
        )
    return nn.Sequential(*blocks)


class ExitHead(nn.Sequential):
    """Average pool to 2x2 -> requantize -> linear classifier (keeps coarse spatial layout)."""

    def __init__(self, in_channels: int, num_classes: int, weight_bits: int, act_bits: int):
        super().__init__(
            nn.AdaptiveAvgPool2d(2),
            qnn.QuantIdentity(bit_width=act_bits),
            nn.Flatten(),
            qnn.QuantLinear(4 * in_channels, num_classes, bias=True, weight_bit_width=weight_bits),
        )


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
        self.heads = nn.ModuleDict(
            {
                str(i): ExitHead(
                    spec.stages[i].width,
                    spec.num_classes,
                    spec.stages[i].weight_bits,
                    spec.stages[i].act_bits,
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
