"""ONNX -> list of compute layers, each a typed LayerSpec ready for ZigZag.

Brevitas QCDQ graphs are read directly: quantize/dequantize/clip chains are folded away and each
layer's weight, input-activation and output-activation bit widths are recovered from them
(`Clip` range if present, else the integer type). Plain float graphs work too; their layers get
ZigZag's default precisions (8-bit weights and activations, 16-bit partial sums).

Partial sums use ZigZag's convention of twice the input-activation width (the register files of
the shipped accelerators are sized for it).

The geometry conventions (loop dimensions, equation, padding) follow ZigZag 3.9's own ONNX parser,
so that costing our layer list layer by layer gives the same totals as ZigZag on the whole graph.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from codesign.errors import CodesignError

COMPUTE_OPS = ("Conv", "Gemm", "MatMul")
POOL_OPS = {"GlobalAveragePool": "Pool", "AveragePool": "Pool", "MaxPool": "Pool", "GlobalMaxPool": "Pool"}
ADD_OPS = {"Add": "Add", "Sum": "Add"}
ITEM_OPS = {*COMPUTE_OPS, *POOL_OPS, *ADD_OPS}
PASS_THROUGH_OPS = {"Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "MaxPool", "Relu"}
OUTPUT_CHAIN_OPS = {"BatchNormalization", "Relu", "Identity", "Flatten", "Reshape"}
INT_BITS = {
    onnx.TensorProto.INT8: 8,
    onnx.TensorProto.UINT8: 8,
    onnx.TensorProto.INT16: 16,
    onnx.TensorProto.UINT16: 16,
    onnx.TensorProto.INT32: 32,
    onnx.TensorProto.INT4: 4,
    onnx.TensorProto.UINT4: 4,
}
ZIGZAG_DEFAULT_BITS = 8
NETWORK_INPUT = "<input>"  # in `reads`: the graph's input image
SEGMENT_PATTERN = re.compile(r"^/?(stages|heads)\.(\d+)[/.]")
EXIT_OUTPUT_PATTERN = re.compile(r"^exit(\d+)$")

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


class _Graph:
    """Index of an ONNX graph: producers, consumers, constants and shapes."""

    def __init__(self, model: onnx.ModelProto, source: str):
        self.source = source
        self.model = model
        graph = model.graph
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for out in node.output:
                self.producer[out] = node
            for inp in node.input:
                self.consumers.setdefault(inp, []).append(node)
        self.initializers = {init.name: init for init in graph.initializer}
        self.shapes: dict[str, list[int]] = {}
        for value in [*graph.input, *graph.output, *graph.value_info]:
            dims = value.type.tensor_type.shape.dim
            self.shapes[value.name] = [d.dim_value for d in dims]
        for init in graph.initializer:
            self.shapes[init.name] = list(init.dims)

    def constant(self, name: str) -> np.ndarray | None:
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
        return None

    def shape(self, name: str, node: onnx.NodeProto) -> list[int]:
        shape = self.shapes.get(name)
        if not shape:
            raise CodesignError(
                f"{self.source}: node {node.name or node.op_type}: expected a known shape for tensor {name!r} "
                "after shape inference"
            )
        return shape

    def dtype_bits(self, name: str) -> int | None:
        if name in self.initializers:
            return INT_BITS.get(self.initializers[name].data_type)
        return None

    def clip_bits(self, clip: onnx.NodeProto) -> int | None:
        low = self.constant(clip.input[1]) if len(clip.input) > 1 and clip.input[1] else None
        high = self.constant(clip.input[2]) if len(clip.input) > 2 and clip.input[2] else None
        if low is None or high is None:
            return None
        levels = int(np.asarray(high).item()) - int(np.asarray(low).item()) + 1
        return max(1, math.ceil(math.log2(levels)))

    def quantize_bits(self, quantize: onnx.NodeProto) -> int:
        """Bits of a QuantizeLinear output: a following Clip narrows the integer type."""
        for consumer in self.consumers.get(quantize.output[0], []):
            if consumer.op_type == "Clip":
                bits = self.clip_bits(consumer)
                if bits is not None:
                    return bits
        zero_point = quantize.input[2] if len(quantize.input) > 2 else ""
        return self.dtype_bits(zero_point) or 8

    def dequantized_bits(self, dequantize: onnx.NodeProto) -> int | None:
        """Bits of the integer tensor a DequantizeLinear reads."""
        source = dequantize.input[0]
        node = self.producer.get(source)
        if node is not None and node.op_type == "Clip":
            bits = self.clip_bits(node)
            if bits is not None:
                return bits
            source = node.input[0]
            node = self.producer.get(source)
        if node is not None and node.op_type == "QuantizeLinear":
            return self.quantize_bits(node)
        return self.dtype_bits(source)

    def input_bits(self, name: str) -> int | None:
        """Bits of a tensor that feeds a compute layer, looking through layout-only ops."""
        node = self.producer.get(name)
        while node is not None and node.op_type in PASS_THROUGH_OPS:
            node = self.producer.get(node.input[0])
        if node is not None and node.op_type == "DequantizeLinear":
            return self.dequantized_bits(node)
        return None

    def output_bits(self, name: str) -> int | None:
        """Bits the layer's result is requantized to, following BN/ReLU/layout ops to a QuantizeLinear."""
        current = name
        for _ in range(8):
            consumers = self.consumers.get(current, [])
            if len(consumers) != 1:
                return None
            node = consumers[0]
            if node.op_type == "QuantizeLinear":
                return self.quantize_bits(node)
            if node.op_type not in OUTPUT_CHAIN_OPS:
                return None
            current = node.output[0]
        return None

    def has_predecessor_node(self, name: str) -> bool:
        return name in self.producer

    def compute_sources(self, node: onnx.NodeProto) -> tuple[str, ...]:
        """Names of the compute nodes whose results reach `node`'s variable inputs, looking through every
        other node (activations, pooling, Add, Q/DQ...); nearest first."""
        found: list[str] = []
        queue = [name for name in node.input if name and name not in self.initializers]
        seen: set[str] = set()
        while queue:
            tensor = queue.pop(0)
            producer = self.producer.get(tensor)
            if producer is None or tensor in seen:
                continue
            seen.add(tensor)
            if producer.op_type in COMPUTE_OPS:
                name = producer.name or f"{producer.op_type}_{producer.output[0]}"
                if name not in found:
                    found.append(name)
                continue
            queue.extend(i for i in producer.input if i and i not in self.initializers)
        return tuple(found)

    def item_sources(self, node: onnx.NodeProto) -> tuple[str, ...]:
        """Names of the items (compute layers, pooling, Add) whose results `node` reads, looking through the
        operators that are fused into their producer (activations, re/dequantization, layout);
        NETWORK_INPUT for the graph input."""
        found: list[str] = []
        queue = [name for name in node.input if name and name not in self.initializers]
        seen: set[str] = set()
        while queue:
            tensor = queue.pop(0)
            if tensor in seen:
                continue
            seen.add(tensor)
            producer = self.producer.get(tensor)
            if producer is None:
                if tensor not in self.initializers and NETWORK_INPUT not in found:
                    found.append(NETWORK_INPUT)
                continue
            if producer.op_type in ITEM_OPS:
                name = producer.name or f"{producer.op_type}_{producer.output[0]}"
                if name not in found:
                    found.append(name)
                continue
            queue.extend(
                i for i in producer.input if i and i not in self.initializers and self.constant(i) is None
            )
        return tuple(found)


def _named_segment(node: onnx.NodeProto) -> str | None:
    match = SEGMENT_PATTERN.match(node.name)
    if match is None:
        return None
    kind, index = match.groups()
    return f"{'stage' if kind == 'stages' else 'head'}{index}"


def _reachable_outputs(model: onnx.ModelProto) -> dict[int, frozenset[int]]:
    """For each node (by position), the graph outputs it feeds. Nodes are topologically ordered in ONNX."""
    outputs = {o.name: k for k, o in enumerate(model.graph.output)}
    consumers: dict[str, list[int]] = {}
    for position, node in enumerate(model.graph.node):
        for inp in node.input:
            consumers.setdefault(inp, []).append(position)
    reach: dict[int, frozenset[int]] = {}
    for position in range(len(model.graph.node) - 1, -1, -1):
        node = model.graph.node[position]
        found: set[int] = set()
        for out in node.output:
            if out in outputs:
                found.add(outputs[out])
            for consumer in consumers.get(out, []):
                found |= reach[consumer]
        reach[position] = frozenset(found)
    return reach


def _structural_segment(reach: frozenset[int], exit_stages: tuple[int, ...]) -> str:
    """Segment of a node from the exits (graph outputs) it feeds: shared by several exits -> the backbone
    stage before the earliest; feeding one early exit only -> that exit's head; only the final exit -> last stage."""
    if len(reach) > 1:
        return f"stage{exit_stages[min(reach)]}"
    (k,) = reach
    return f"stage{exit_stages[k]}" if k == len(exit_stages) - 1 else f"head{exit_stages[k]}"


def _int_attr(node: onnx.NodeProto, name: str, default: Any) -> Any:
    for attr in node.attribute:
        if attr.name == name:
            return list(attr.ints) if attr.type == onnx.AttributeProto.INTS else int(attr.i)
    return default


def _custom_precision(node: onnx.NodeProto) -> tuple[int, int, int | None]:
    """ZigZag's per-node override attributes `weight_size`, `act_size`, `output_size` (for float graphs)."""
    weight = _int_attr(node, "weight_size", ZIGZAG_DEFAULT_BITS)
    act = _int_attr(node, "act_size", ZIGZAG_DEFAULT_BITS)
    out = _int_attr(node, "output_size", None)
    return weight, act, out


def _fix_dimensions(model: onnx.ModelProto, source: str, input_shape: tuple[int, ...] | None) -> None:
    """Costs are per inference: a symbolic batch dimension is costed as 1. Any other symbolic dimension of an
    input must be given (`input_shape`, the sizes after the batch dimension): guessing it would cost a
    different network (a 36x36 map costed as 1x1 is 1,296 times fewer MACs)."""
    initializers = {init.name for init in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        dims = value.type.tensor_type.shape.dim
        if input_shape is not None and len(input_shape) != len(dims) - 1:
            raise CodesignError(
                f"{source}: input {value.name!r}: expected --input-shape with {len(dims) - 1} sizes "
                f"(the input has {len(dims)} dimensions, batch first), got {len(input_shape)}"
            )
        for index, dim in enumerate(dims):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                if index > 0 and input_shape is not None and input_shape[index - 1] != dim.dim_value:
                    raise CodesignError(
                        f"{source}: input {value.name!r} dimension {index}: expected {input_shape[index - 1]} "
                        f"from --input-shape, the graph fixes it at {dim.dim_value}"
                    )
                continue
            if index == 0:
                size = 1
            elif input_shape is not None:
                size = input_shape[index - 1]
            else:
                name = dim.dim_param or "unnamed"
                raise CodesignError(
                    f"{source}: input {value.name!r} dimension {index} ({name!r}): expected a fixed size; export the "
                    f"model with a static input shape or give it with --input-shape "
                    f"({len(dims) - 1} sizes after the batch, e.g. {','.join(['1'] + ['28'] * (len(dims) - 2))})"
                )
            dim.Clear()
            dim.dim_value = size
    for value in model.graph.output:  # batch -> 1; other symbolic sizes are left to shape inference
        dims = value.type.tensor_type.shape.dim
        for index, dim in enumerate(dims):
            if not dim.HasField("dim_value") or dim.dim_value <= 0:
                dim.Clear()
                if index == 0:
                    dim.dim_value = 1


def load_onnx(path: str | Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise CodesignError(f"{path}: file: expected an existing ONNX file")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends
        raise CodesignError(
            f"{path}: file: expected an ONNX model (protobuf), could not parse it ({type(exc).__name__})"
        ) from None


def layers_from_onnx(model: onnx.ModelProto | str | Path, source: str | None = None) -> list[LayerSpec]:
    """Compute layers of an ONNX graph in node order, with Q/DQ folded and bit widths recovered."""
    return parse_onnx(model, source).layers


def parse_onnx(
    model: onnx.ModelProto | str | Path, source: str | None = None, input_shape: tuple[int, ...] | None = None
) -> ParsedNetwork:
    """Compute layers, non-compute operators and exits of an ONNX graph.

    Segments come from codesign's module names when present (`/stages.<i>/`, `/heads.<i>/`), else from
    the graph's structure: each graph output is an exit, earliest first in output order. `input_shape`:
    the input's sizes after the batch dimension, for graphs exported with symbolic ones.
    """
    if not isinstance(model, onnx.ModelProto):
        source = source or str(model)
        model = load_onnx(model)
    source = source or "<onnx model>"
    if any(node.op_type == "If" for node in model.graph.node):
        raise CodesignError(
            f"{source}: graph: expected a graph without 'If' nodes (export exits as separate outputs)"
        )
    model = onnx.ModelProto.FromString(model.SerializeToString())
    _fix_dimensions(model, source, input_shape)
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:
        raise CodesignError(
            f"{source}: graph: expected a valid ONNX graph for shape inference ({exc})"
        ) from None
    _check_order(model, source)
    graph = _Graph(model, source)
    output_names = tuple(o.name for o in model.graph.output)
    if not output_names:
        raise CodesignError(f"{source}: graph: expected at least one graph output")
    reach = _reachable_outputs(model)
    named = [EXIT_OUTPUT_PATTERN.match(name) for name in output_names]
    if all(named):
        exit_stages = tuple(int(m.group(1)) for m in named if m is not None)
    else:
        exit_stages = tuple(range(len(output_names)))
    layers: list[LayerSpec] = []
    operators: list[OperatorSpec] = []
    dataflow: list[DataflowNode] = []
    producer_position: dict[str, int] = {}
    for position, node in enumerate(model.graph.node):
        for out in node.output:
            producer_position[out] = position
        if not reach[position]:
            continue  # feeds no output: dead code
        segment = _named_segment(node)
        if segment is None:
            segment = _structural_segment(reach[position], exit_stages)
        dataflow.append(
            DataflowNode(
                position,
                node.name or f"{node.op_type}_{node.output[0]}",
                node.op_type,
                segment,
                node.op_type in COMPUTE_OPS,
                tuple(producer_position[i] for i in node.input if i in producer_position),
            )
        )
        if node.op_type not in COMPUTE_OPS and node.op_type not in POOL_OPS and node.op_type not in ADD_OPS:
            continue
        try:
            if node.op_type in COMPUTE_OPS:
                layer = _layer_from_node(node, graph, segment)
                sources = graph.compute_sources(node)
                layers.append(
                    replace(layer, inputs_from=sources, reads=graph.item_sources(node), position=position)
                )
            else:
                operator = _operator_from_node(node, graph, segment)
                operators.append(replace(operator, reads=graph.item_sources(node), position=position))
        except (IndexError, KeyError, ValueError, ZeroDivisionError) as exc:  # shapes ONNX let through
            shapes = {name: graph.shapes.get(name) for name in (*node.input, *node.output) if name}
            raise CodesignError(
                f"{source}: node {node.name or node.op_type}: expected a {node.op_type} with the ranks it takes "
                f"(Conv: 4-D NCHW input, output and weight; Gemm/MatMul: at least 2-D), got shapes {shapes} "
                f"({type(exc).__name__})"
            ) from None
    if not layers:
        raise CodesignError(f"{source}: graph: expected at least one Conv, Gemm or MatMul node, found none")
    return ParsedNetwork(layers, operators, exit_stages, output_names, tuple(dataflow))


def _check_order(model: onnx.ModelProto, source: str) -> None:
    """Every node reads only graph inputs, initializers and outputs of nodes before it (ONNX requires this
    order; a cycle cannot have it)."""
    known = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
    for node in model.graph.node:
        for name in node.input:
            if name not in known:
                raise CodesignError(
                    f"{source}: node {node.name or node.op_type}: expected its input {name!r} from a graph input, "
                    "an initializer or an earlier node (ONNX nodes are topologically sorted, without cycles)"
                )
        known.update(node.output)


def _elements(shape: list[int]) -> int:
    return int(math.prod(max(1, d) for d in shape))


def _operator_from_node(node: onnx.NodeProto, graph: _Graph, segment: str) -> OperatorSpec:
    name = node.name or f"{node.op_type}_{node.output[0]}"
    inputs = [i for i in node.input if i and i not in graph.initializers]
    in_elements = sum(_elements(graph.shape(i, node)) for i in inputs)
    out_elements = _elements(graph.shape(node.output[0], node))
    act_bits = graph.input_bits(inputs[0]) or ZIGZAG_DEFAULT_BITS
    out_bits = graph.output_bits(node.output[0]) or act_bits
    kind = POOL_OPS.get(node.op_type) or ADD_OPS[node.op_type]
    operations = in_elements if kind == "Pool" else out_elements * max(1, len(inputs) - 1)
    return OperatorSpec(name, kind, segment, in_elements, out_elements, act_bits, out_bits, operations)


def _layer_from_node(node: onnx.NodeProto, graph: _Graph, segment: str) -> LayerSpec:
    name = node.name or f"{node.op_type}_{node.output[0]}"
    act_bits = graph.input_bits(node.input[0])
    weight_bits = graph.input_bits(node.input[1]) if len(node.input) > 1 else None
    quantized = act_bits is not None or weight_bits is not None
    custom_weight, custom_act, custom_out = _custom_precision(node)
    if quantized:
        act_bits = act_bits or 32
        weight_bits = weight_bits or 32
        out_bits = graph.output_bits(node.output[0]) or act_bits
    else:
        weight_bits, act_bits = custom_weight, custom_act
        out_bits = act_bits
    predecessors = sum(1 for name_in in node.input if graph.has_predecessor_node(name_in))
    if predecessors == 0:
        source = SOURCE_BOTH_CONSTANT
    elif predecessors == 1 or (quantized and node.op_type != "MatMul"):
        # A QCDQ graph feeds constant weights through DequantizeLinear nodes: they are still constants.
        source = SOURCE_INPUT_FROM_LAYER
    elif predecessors == 2:
        source = SOURCE_BOTH_FROM_LAYERS
    else:
        raise CodesignError(
            f"{graph.source}: node {name}: expected at most 2 predecessor nodes (fold bias quantization first), "
            f"found {predecessors}"
        )
    if node.op_type == "Conv":
        in_shape = graph.shape(node.input[0], node)
        out_shape = graph.shape(node.output[0], node)
        weight_shape = graph.shape(node.input[1], node)
        kernel = _int_attr(node, "kernel_shape", list(weight_shape[2:]))
        groups = _int_attr(node, "group", 1)
        psum = custom_out or 2 * act_bits
        return conv_layer(
            name,
            segment,
            batch=out_shape[0] if out_shape[0] > 0 else 1,
            in_channels=in_shape[1],
            out_channels=out_shape[1],
            groups=groups,
            in_hw=(in_shape[2], in_shape[3]),
            out_hw=(out_shape[2], out_shape[3]),
            kernel=(kernel[0], kernel[1]),
            strides=tuple(_int_attr(node, "strides", [1, 1])),
            dilations=tuple(_int_attr(node, "dilations", [1, 1])),
            pads=tuple(_int_attr(node, "pads", [0, 0, 0, 0])),
            weight_bits=weight_bits,
            act_bits=act_bits,
            output_bits=out_bits,
            partial_sum_bits=psum,
            operand_source=source,
            quantized=quantized,
        )
    in_shape = list(graph.shape(node.input[0], node))
    out_shape = graph.shape(node.output[0], node)
    if node.op_type == "Gemm" and _int_attr(node, "transA", 0):
        in_shape = [in_shape[1], in_shape[0]]
    psum = custom_out or 2 * act_bits
    weights_constant = source != SOURCE_BOTH_FROM_LAYERS
    return gemm_layer(
        name,
        segment,
        input_shape=tuple(in_shape),
        out_features=out_shape[-1],
        weights_constant=weights_constant,
        weight_bits=weight_bits,
        act_bits=act_bits,
        output_bits=out_bits,
        partial_sum_bits=psum,
        operand_source=source,
        quantized=quantized,
        op_type=node.op_type,
    )
