"""An index of an ONNX graph for reading layers from it: producers, consumers, constants, shapes, and the
bit widths a Brevitas QCDQ graph's quantize/dequantize/clip chains give each tensor."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from codesign.cost.layer_specs import NETWORK_INPUT, ZIGZAG_DEFAULT_BITS
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


class GraphIndex:
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


def int_attr(node: onnx.NodeProto, name: str, default: Any) -> Any:
    for attr in node.attribute:
        if attr.name == name:
            return list(attr.ints) if attr.type == onnx.AttributeProto.INTS else int(attr.i)
    return default


def custom_precision(node: onnx.NodeProto) -> tuple[int, int, int | None]:
    """ZigZag's per-node override attributes `weight_size`, `act_size`, `output_size` (for float graphs)."""
    weight = int_attr(node, "weight_size", ZIGZAG_DEFAULT_BITS)
    act = int_attr(node, "act_size", ZIGZAG_DEFAULT_BITS)
    out = int_attr(node, "output_size", None)
    return weight, act, out


def elements(shape: list[int]) -> int:
    return int(math.prod(max(1, d) for d in shape))
