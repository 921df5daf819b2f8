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

import re
from dataclasses import replace
from pathlib import Path

import onnx

from codesign.cost.layer_specs import (
    SOURCE_BOTH_CONSTANT,
    SOURCE_BOTH_FROM_LAYERS,
    SOURCE_INPUT_FROM_LAYER,
    ZIGZAG_DEFAULT_BITS,
    DataflowNode,
    LayerSpec,
    OperatorSpec,
    ParsedNetwork,
    conv_layer,
    gemm_layer,
)
from codesign.cost.onnx_checks import check_order, fix_dimensions, load_onnx
from codesign.cost.onnx_index import (
    ADD_OPS,
    COMPUTE_OPS,
    POOL_OPS,
    GraphIndex,
    custom_precision,
    elements,
    int_attr,
)
from codesign.errors import CodesignError

SEGMENT_PATTERN = re.compile(r"^/?(stages|heads)\.(\d+)[/.]")
EXIT_OUTPUT_PATTERN = re.compile(r"^exit(\d+)$")


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
    fix_dimensions(model, source, input_shape)
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:
        raise CodesignError(
            f"{source}: graph: expected a valid ONNX graph for shape inference ({exc})"
        ) from None
    check_order(model, source)
    graph = GraphIndex(model, source)
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


def _operator_from_node(node: onnx.NodeProto, graph: GraphIndex, segment: str) -> OperatorSpec:
    name = node.name or f"{node.op_type}_{node.output[0]}"
    inputs = [i for i in node.input if i and i not in graph.initializers]
    in_elements = sum(elements(graph.shape(i, node)) for i in inputs)
    out_elements = elements(graph.shape(node.output[0], node))
    act_bits = graph.input_bits(inputs[0]) or ZIGZAG_DEFAULT_BITS
    out_bits = graph.output_bits(node.output[0]) or act_bits
    kind = POOL_OPS.get(node.op_type) or ADD_OPS[node.op_type]
    operations = in_elements if kind == "Pool" else out_elements * max(1, len(inputs) - 1)
    return OperatorSpec(name, kind, segment, in_elements, out_elements, act_bits, out_bits, operations)


def _layer_from_node(node: onnx.NodeProto, graph: GraphIndex, segment: str) -> LayerSpec:
    name = node.name or f"{node.op_type}_{node.output[0]}"
    act_bits = graph.input_bits(node.input[0])
    weight_bits = graph.input_bits(node.input[1]) if len(node.input) > 1 else None
    quantized = act_bits is not None or weight_bits is not None
    custom_weight, custom_act, custom_out = custom_precision(node)
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
        kernel = int_attr(node, "kernel_shape", list(weight_shape[2:]))
        groups = int_attr(node, "group", 1)
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
            strides=tuple(int_attr(node, "strides", [1, 1])),
            dilations=tuple(int_attr(node, "dilations", [1, 1])),
            pads=tuple(int_attr(node, "pads", [0, 0, 0, 0])),
            weight_bits=weight_bits,
            act_bits=act_bits,
            output_bits=out_bits,
            partial_sum_bits=psum,
            operand_source=source,
            quantized=quantized,
        )
    in_shape = list(graph.shape(node.input[0], node))
    out_shape = graph.shape(node.output[0], node)
    if node.op_type == "Gemm" and int_attr(node, "transA", 0):
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
