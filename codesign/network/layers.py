"""The layers blocks are made of: Brevitas quantized layers for candidate networks, and elastic float
layers for the weight-sharing supernet (any width and kernel up to the largest, sliced from one weight).

Attribute names (`conv`, `bn`, `act`, `body`, `expand`, `dw`, `project`, `conv1`, `conv2`, `shortcut`)
are parameter names: a candidate inherits the supernet's weights by them, and cached supernets store them.
"""

from __future__ import annotations

import brevitas.nn as qnn
import torch
import torch.nn.functional as F
from torch import nn

from codesign.spec import StageSpec


class ConvBNAct(nn.Module):
    """Quantized conv -> batch norm -> quantized ReLU (whose quantizer sets the activation bits)."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, weight_bits: int, act_bits: int, groups: int = 1
    ):
        super().__init__()
        self.conv = qnn.QuantConv2d(
            cin,
            cout,
            kernel,
            stride=stride,
            padding=kernel // 2,
            groups=groups,
            bias=False,
            weight_bit_width=weight_bits,
        )
        self.bn = nn.BatchNorm2d(cout)
        self.act = qnn.QuantReLU(bit_width=act_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class ConvBN(nn.Module):
    """Quantized conv -> batch norm -> requantize (no activation: linear bottleneck / residual branch)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, weight_bits: int, act_bits: int):
        super().__init__()
        self.conv = qnn.QuantConv2d(
            cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False, weight_bit_width=weight_bits
        )
        self.bn = nn.BatchNorm2d(cout)
        self.quant = qnn.QuantIdentity(bit_width=act_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.quant(self.bn(self.conv(x)))


class ConvBlock(nn.Module):
    def __init__(self, cin: int, stage: StageSpec, stride: int):
        super().__init__()
        self.body = ConvBNAct(cin, stage.width, stage.kernel, stride, stage.weight_bits, stage.act_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class MBConvBlock(nn.Module):
    """MobileNetV2 inverted residual: 1x1 expand (if expansion > 1), depthwise conv, linear 1x1 project."""

    def __init__(self, cin: int, stage: StageSpec, stride: int):
        super().__init__()
        hidden = cin * stage.expansion
        w, a = stage.weight_bits, stage.act_bits
        self.expand = ConvBNAct(cin, hidden, 1, 1, w, a) if stage.expansion > 1 else None
        self.dw = ConvBNAct(hidden, hidden, stage.kernel, stride, w, a, groups=hidden)
        self.project = ConvBN(hidden, stage.width, 1, 1, w, a)
        self.residual = stride == 1 and cin == stage.width
        self.out_quant = qnn.QuantIdentity(bit_width=a) if self.residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.dw(y))
        if self.out_quant is not None:
            y = self.out_quant(x + y)
        return y


class BasicBlock(nn.Module):
    """ResNet basic block: conv-BN-ReLU, conv-BN, plus an identity or 1x1 conv shortcut, then ReLU."""

    def __init__(self, cin: int, stage: StageSpec, stride: int):
        super().__init__()
        w, a = stage.weight_bits, stage.act_bits
        self.conv1 = ConvBNAct(cin, stage.width, stage.kernel, stride, w, a)
        self.conv2 = ConvBN(stage.width, stage.width, stage.kernel, 1, w, a)
        self.shortcut = (
            ConvBN(cin, stage.width, 1, stride, w, a) if stride != 1 or cin != stage.width else None
        )
        self.act = qnn.QuantReLU(bit_width=a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.shortcut(x) if self.shortcut is not None else x
        return self.act(self.conv2(self.conv1(x)) + skip)


class ElasticConvBN(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, depthwise: bool = False):
        super().__init__()
        self.depthwise = depthwise
        self.conv = nn.Conv2d(cin, cout, kernel, bias=False, groups=cout if depthwise else 1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, cout: int, kernel: int, stride: int, act: bool) -> torch.Tensor:
        if self.depthwise:
            cout = x.shape[1]
        weight = self.conv.weight[:cout, : (1 if self.depthwise else x.shape[1])]
        full = weight.shape[-1]
        if kernel < full:
            start = (full - kernel) // 2
            weight = weight[:, :, start : start + kernel, start : start + kernel]
        y = F.conv2d(x, weight, stride=stride, padding=kernel // 2, groups=cout if self.depthwise else 1)
        bn = self.bn
        y = F.batch_norm(
            y,
            bn.running_mean[:cout],
            bn.running_var[:cout],
            bn.weight[:cout],
            bn.bias[:cout],
            training=self.training,
            momentum=bn.momentum if bn.momentum is not None else 0.0,
            eps=bn.eps,
        )
        return F.relu(y) if act else y
