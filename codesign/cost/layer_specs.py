"""The layers codesign costs, in ZigZag's terms: a compute layer's loops, operands and precisions, the
non-compute operators ZigZag does not cost, and the network they form with its exits.

The geometry conventions (loop dimensions, equation, padding) follow ZigZag 3.9's own ONNX parser, so that
costing these layers one by one gives the same totals as ZigZag on the whole graph.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

ZIGZAG_DEFAULT_BITS = 8  # a float graph's layers: ZigZag's default precision
NETWORK_INPUT = "<input>"  # in `reads`: the graph's input image


# How the layer's operands are sourced, as ZigZag's ONNX parser decides from predecessor nodes.
SOURCE_BOTH_CONSTANT = "both_constant"  # no predecessor node: the network input feeds it directly
SOURCE_INPUT_FROM_LAYER = "input_from_layer"  # activations from a node, weights constant
SOURCE_BOTH_FROM_LAYERS = "both_from_layers"  # two variable operands (e.g. activation x activation)


@dataclass(frozen=True)
class LayerSpec:
    """One compute layer in ZigZag's terms, plus where it sits in the early-exit network."""

    name: str
    op_type: str
    segment: str  # "stage<i>", "head<i>", or "backbone" for graphs without codesign module names
    equation: str
    loop_dims: tuple[str, ...]
    loop_sizes: tuple[int, ...]
    dimension_relations: tuple[str, ...] = ()
    pr_loop_sizes: tuple[int, int] | None = None  # (IX, IY) for convolutions
    padding: tuple[tuple[int, int], tuple[int, int]] | None = None
    weight_bits: int = ZIGZAG_DEFAULT_BITS
    act_bits: int = ZIGZAG_DEFAULT_BITS
    output_bits: int = ZIGZAG_DEFAULT_BITS  # final output precision
    partial_sum_bits: int = 2 * ZIGZAG_DEFAULT_BITS
    operand_source: str = SOURCE_INPUT_FROM_LAYER
    quantized: bool = False
    # The compute layers whose outputs feed this one (through pooling, activations, re/dequantization...),
    # by name: the network's graph, for costs that depend on neighbouring layers (in-memory computing).
    inputs_from: tuple[str, ...] = ()
    # The items (compute layers and operators) whose results this layer reads directly, by name
    # (NETWORK_INPUT: the graph input), and its node position: what activation liveness needs.
    reads: tuple[str, ...] = ()
    position: int = -1

    @property
    def macs(self) -> int:
        return int(np.prod([s for s in self.loop_sizes if s > 0], dtype=np.int64))

    def _operand_elements(self, operand: str) -> int:
        match = re.search(operand + r"((?:\[\w+\])+)", self.equation)
        if match is None:
            return 0
        dims = {d.upper() for d in re.findall(r"\[(\w+)\]", match.group(1))}
        sizes = dict(zip(self.loop_dims, self.loop_sizes, strict=True))
        return int(np.prod([max(1, sizes[d]) for d in dims if d in sizes], dtype=np.int64))

    @property
    def output_elements(self) -> int:
        """Size of the output tensor: the product of the loop dimensions indexing O in the equation."""
        return self._operand_elements("O")

    @property
    def input_elements(self) -> int:
        """Size of the input activation tensor (for a convolution: its full, unpadded input map)."""
        if self.pr_loop_sizes is not None:
            sizes = dict(zip(self.loop_dims, self.loop_sizes, strict=True))
            channels = max(1, sizes.get("C", 1)) * max(1, sizes.get("G", 1)) * max(1, sizes.get("B", 1))
            return int(channels * self.pr_loop_sizes[0] * self.pr_loop_sizes[1])
        return self._operand_elements("I")

    @property
    def weight_elements(self) -> int:
        """Number of weights (0 when both operands are activations)."""
        return self._operand_elements("W") if self.operand_source != SOURCE_BOTH_FROM_LAYERS else 0

    def geometry_key(self) -> dict[str, Any]:
        """Everything ZigZag's result depends on from the layer side (the name is not part of it)."""
        return {
            "op_type": self.op_type,
            "equation": self.equation,
            "loop_dims": list(self.loop_dims),
            "loop_sizes": list(self.loop_sizes),
            "dimension_relations": list(self.dimension_relations),
            "pr_loop_sizes": list(self.pr_loop_sizes) if self.pr_loop_sizes else None,
            "padding": [list(p) for p in self.padding] if self.padding else None,
            "precision": [self.weight_bits, self.act_bits, self.output_bits, self.partial_sum_bits],
            "operand_source": self.operand_source,
        }

    def zigzag_dict(self, layer_id: int = 1) -> dict[str, Any]:
        """The layer in ZigZag's workload format (as its ONNX parser would have produced it)."""
        if self.operand_source == SOURCE_BOTH_CONSTANT:
            source = {"W": layer_id, "I": layer_id}
        elif self.operand_source == SOURCE_INPUT_FROM_LAYER:
            source = {"W": layer_id, "I": layer_id - 1}
        else:
            source = {"W": layer_id - 1, "I": layer_id - 1}
        data: dict[str, Any] = {
            "id": layer_id,
            "name": self.name,
            "operator_type": self.op_type,
            "equation": self.equation,
            "loop_dims": list(self.loop_dims),
            "loop_sizes": list(self.loop_sizes),
            "dimension_relations": list(self.dimension_relations),
            "operand_source": source,
            "operand_precision": {
                "W": self.weight_bits,
                "I": self.act_bits,
                "O_final": self.output_bits,
                "O": self.partial_sum_bits,
            },
        }
        if self.pr_loop_sizes is not None and self.padding is not None:
            data["pr_loop_dims"] = ["IX", "IY"]
            data["pr_loop_sizes"] = list(self.pr_loop_sizes)
            data["padding"] = [list(p) for p in self.padding]
        return data


@dataclass(frozen=True)
class OperatorSpec:
    """A non-compute operator ZigZag does not cost (pooling, residual add): data movement plus simple ops."""

    name: str
    op_type: str  # "Pool" or "Add"
    segment: str
    input_elements: int  # all inputs together
    output_elements: int
    act_bits: int
    output_bits: int
    operations: int  # additions / comparisons
    reads: tuple[str, ...] = ()  # as LayerSpec.reads
    position: int = -1


@dataclass(frozen=True)
class DataflowNode:
    """One ONNX node as ZigZag's ONNX parser links it: a compute layer or a node it does not cost (a
    "dummy"), and the nodes producing its inputs. In-memory computing needs this whole graph: ZigZag decides
    where each layer's operands live from its neighbours across residual Adds, concatenations and branches."""

    position: int  # node index in the graph (ZigZag's node id)
    name: str
    op_type: str
    segment: str
    is_layer: bool
    predecessors: tuple[int, ...]  # positions of the nodes producing its inputs, in input order


@dataclass(frozen=True)
class ParsedNetwork:
    """What the cost engine needs from a graph: compute layers, other operators, and its exits.

    `exit_stages[k]` is the stage index after which graph output k sits (earliest first, final last).
    """

    layers: list[LayerSpec]
    operators: list[OperatorSpec]
    exit_stages: tuple[int, ...]
    output_names: tuple[str, ...]
    dataflow: tuple[DataflowNode, ...] = ()  # every node that feeds an output, in graph order


def conv_layer(
    name: str,
    segment: str,
    *,
    batch: int,
    in_channels: int,
    out_channels: int,
    groups: int,
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilations: tuple[int, int],
    pads: tuple[int, int, int, int],
    weight_bits: int,
    act_bits: int,
    output_bits: int,
    partial_sum_bits: int,
    operand_source: str,
    quantized: bool,
) -> LayerSpec:
    """A convolution in ZigZag's convention (same loop order, relations and padding as its ConvParser)."""
    return LayerSpec(
        name=name,
        op_type="Conv",
        segment=segment,
        equation="O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]",
        loop_dims=("B", "K", "G", "OX", "OY", "C", "FX", "FY"),
        loop_sizes=(
            batch,
            math.ceil(out_channels / groups),
            groups,
            out_hw[1],
            out_hw[0],
            math.ceil(in_channels / groups),
            kernel[0],
            kernel[1],
        ),
        dimension_relations=(
            f"ix={strides[0]}*ox+{dilations[0]}*fx",
            f"iy={strides[1]}*oy+{dilations[1]}*fy",
        ),
        pr_loop_sizes=(in_hw[1], in_hw[0]),
        padding=((pads[0], pads[2]), (pads[1], pads[3])),
        weight_bits=weight_bits,
        act_bits=act_bits,
        output_bits=output_bits,
        partial_sum_bits=partial_sum_bits,
        operand_source=operand_source,
        quantized=quantized,
    )


def gemm_layer(
    name: str,
    segment: str,
    *,
    input_shape: tuple[int, ...],
    out_features: int,
    weights_constant: bool,
    weight_bits: int,
    act_bits: int,
    output_bits: int,
    partial_sum_bits: int,
    operand_source: str,
    quantized: bool,
    op_type: str = "Gemm",
) -> LayerSpec:
    """A matrix product in ZigZag's Gemm convention: I[(b)][d][c] * W[c][k] -> O[(b)][d][k]."""
    size_d, size_c = input_shape[-2], input_shape[-1]
    batch = 0
    heads = 0
    if len(input_shape) >= 3:
        batch = input_shape[0] or 1
    if len(input_shape) == 4:
        heads = input_shape[1]
    extra_dims = (["B"] if batch else []) + (["H"] if heads else [])
    extra_sizes = ([batch] if batch else []) + ([heads] if heads else [])
    index = ("[b]" if batch else "") + ("[h]" if heads else "")
    weight_index = "" if weights_constant else index
    return LayerSpec(
        name=name,
        op_type=op_type,
        segment=segment,
        equation=f"O{index}[d][k]+=I{index}[d][c]*W{weight_index}[c][k]",
        loop_dims=("C", "D", "K", *extra_dims),
        loop_sizes=(size_c, size_d, out_features, *extra_sizes),
        weight_bits=weight_bits if weights_constant else act_bits,
        act_bits=act_bits,
        output_bits=output_bits,
        partial_sum_bits=partial_sum_bits,
        operand_source=operand_source,
        quantized=quantized,
    )
