"""Backbone block types: the registry `BLOCKS` (`block:` of a workload stage), the one place a block is defined.

A `BlockType` says how a candidate network builds the block from Brevitas quantized layers (`quantized`)
and how the weight-sharing supernet holds every size of it and runs one (`add_elastic_layers`,
`elastic_forward`). Both sides use the same layer names, so a candidate inherits the supernet's weights
by name; cached supernets store those names too, so an existing block's layers are never renamed.

PyTorch is imported when a block is built, not when the registry is read: reading a workload checks
block names without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codesign.registry import Registry
from codesign.spec import StageSpec

if TYPE_CHECKING:
    import torch
    from torch import nn


class BlockType:
    """Extension hook: subclass, implement the three methods, and add an instance to `BLOCKS`.

    - `quantized(cin, stage, stride)`: the block of a candidate network (its first block applies `stride`);
    - `add_elastic_layers(block, cin, width, kernel, expansion)`: set the supernet's layers for the largest
      choices on the supernet block module `block` (layer creation order fixes the initial weights);
    - `elastic_forward(block, x, width, kernel, expansion, stride)`: run one sub-network's choice on them.
    """

    def quantized(self, cin: int, stage: StageSpec, stride: int) -> nn.Module:
        raise NotImplementedError

    def add_elastic_layers(self, block: nn.Module, cin: int, width: int, kernel: int, expansion: int) -> None:
        raise NotImplementedError

    def elastic_forward(
        self, block: nn.Module, x: torch.Tensor, width: int, kernel: int, expansion: int, stride: int
    ) -> torch.Tensor:
        raise NotImplementedError


class Conv(BlockType):
    """conv-BN-ReLU."""

    def quantized(self, cin: int, stage: StageSpec, stride: int) -> nn.Module:
        from codesign.network.layers import ConvBlock

        return ConvBlock(cin, stage, stride)

    def add_elastic_layers(self, block: nn.Module, cin: int, width: int, kernel: int, expansion: int) -> None:
        from codesign.network.layers import ElasticConvBN

        block.body = ElasticConvBN(cin, width, kernel)

    def elastic_forward(
        self, block: nn.Module, x: torch.Tensor, width: int, kernel: int, expansion: int, stride: int
    ) -> torch.Tensor:
        return block.body(x, width, kernel, stride, act=True)


class MBConv(BlockType):
    """MobileNetV2 inverted residual: 1x1 expansion by `expansion`, depthwise `kernel`, linear 1x1
    projection, residual when shapes allow."""

    def quantized(self, cin: int, stage: StageSpec, stride: int) -> nn.Module:
        from codesign.network.layers import MBConvBlock

        return MBConvBlock(cin, stage, stride)

    def add_elastic_layers(self, block: nn.Module, cin: int, width: int, kernel: int, expansion: int) -> None:
        from codesign.network.layers import ElasticConvBN

        hidden = max(cin, width) * expansion
        block.expand = ElasticConvBN(cin, hidden, 1)
        block.dw = ElasticConvBN(hidden, hidden, kernel, depthwise=True)
        block.project = ElasticConvBN(hidden, width, 1)

    def elastic_forward(
        self, block: nn.Module, x: torch.Tensor, width: int, kernel: int, expansion: int, stride: int
    ) -> torch.Tensor:
        cin = x.shape[1]
        y = block.expand(x, cin * expansion, 1, 1, act=True) if expansion > 1 else x
        y = block.project(block.dw(y, 0, kernel, stride, act=True), width, 1, 1, act=False)
        return x + y if stride == 1 and cin == width else y


class Basic(BlockType):
    """ResNet basic block: two `kernel` convs with an identity or 1x1 shortcut."""

    def quantized(self, cin: int, stage: StageSpec, stride: int) -> nn.Module:
        from codesign.network.layers import BasicBlock

        return BasicBlock(cin, stage, stride)

    def add_elastic_layers(self, block: nn.Module, cin: int, width: int, kernel: int, expansion: int) -> None:
        from codesign.network.layers import ElasticConvBN

        block.conv1 = ElasticConvBN(cin, width, kernel)
        block.conv2 = ElasticConvBN(width, width, kernel)
        block.shortcut = ElasticConvBN(cin, width, 1)

    def elastic_forward(
        self, block: nn.Module, x: torch.Tensor, width: int, kernel: int, expansion: int, stride: int
    ) -> torch.Tensor:
        import torch.nn.functional as F

        cin = x.shape[1]
        y = block.conv2(block.conv1(x, width, kernel, stride, act=True), width, kernel, 1, act=False)
        skip = block.shortcut(x, width, 1, stride, act=False) if stride != 1 or cin != width else x
        return F.relu(y + skip)


BLOCKS: Registry[BlockType] = Registry("block", {"conv": Conv(), "mbconv": MBConv(), "basic": Basic()})
