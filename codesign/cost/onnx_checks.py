"""Loading an ONNX file and the checks and fixes a graph needs before its layers are read: a fixed input size
(batch costed as 1) and nodes in topological order; each problem is one line naming the file and the node."""

from __future__ import annotations

from pathlib import Path

import onnx

from codesign.errors import CodesignError


def fix_dimensions(model: onnx.ModelProto, source: str, input_shape: tuple[int, ...] | None) -> None:
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


def check_order(model: onnx.ModelProto, source: str) -> None:
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
