"""Deployment graphs: one ONNX graph per exit position that runs the segment, its exit head, and the exit
decision, so an input costs one session call per exit it reaches and nothing is computed in Python.

Position k's graph takes the input image (k = 0) or the previous segment's features and returns
`features` (for the next segment), `logits`, `prediction` (int64) and, for early exits, `leave` (bool:
the exit's confidence under the policy, of its logits divided by its temperature, is >= its threshold,
both baked into the graph). The confidences are
the policies of `codesign.exits` written in ONNX operators: score margin (TopK of the softmax), max
probability, entropy confidence, and the learned policy (its logistic regression on the same features).
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from codesign.exits import LearnedConfidence

FEATURES, LOGITS, PREDICTION, LEAVE = "features", "logits", "prediction", "leave"


class _Builder:
    """Appends nodes and constants with unique names to a graph."""

    def __init__(self, graph: onnx.GraphProto, prefix: str) -> None:
        self.graph, self.prefix, self.count = graph, prefix, 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}{hint}_{self.count}"

    def constant(self, value: np.ndarray, hint: str = "const") -> str:
        name = self.name(hint)
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], hint: str, outputs: int = 1, **attrs: object) -> list[str]:
        names = [self.name(f"{hint}_out{i}") for i in range(outputs)]
        self.graph.node.append(helper.make_node(op, inputs, names, name=self.name(hint), **attrs))
        return names


def _max_prob(b: _Builder, probs: str) -> str:
    return b.node("ReduceMax", [probs], "maxprob", axes=[1], keepdims=0)[0]


def _margin(b: _Builder, probs: str) -> str:
    k = b.constant(np.array([2], dtype=np.int64), "k")
    values, _ = b.node("TopK", [probs, k], "top2", outputs=2, axis=1, largest=1, sorted=1)
    first, second = b.node("Split", [values], "split", outputs=2, axis=1)
    difference = b.node("Sub", [first, second], "margin")[0]
    return b.node("Squeeze", [difference, b.constant(np.array([1], dtype=np.int64), "axis")], "margin1d")[0]


def _entropy_confidence(b: _Builder, probs: str, classes: int) -> str:
    low = b.constant(np.array(1e-12, dtype=np.float32), "eps")
    high = b.constant(np.array(1.0, dtype=np.float32), "one")
    clipped = b.node("Clip", [probs, low, high], "clip")[0]
    terms = b.node("Mul", [probs, b.node("Log", [clipped], "log")[0]], "plogp")[0]
    summed = b.node(
        "ReduceSum", [terms, b.constant(np.array([1], dtype=np.int64), "axes")], "sum", keepdims=0
    )[0]
    scaled = b.node(
        "Div", [summed, b.constant(np.array(math.log(classes), dtype=np.float32), "logc")], "norm"
    )[0]
    return b.node("Add", [high, scaled], "entropy_conf")[0]  # 1 - entropy / log C  (summed = -entropy)


def _confidence(
    b: _Builder, logits: str, policy: str, classes: int, exit_id: int, model: LearnedConfidence | None
) -> str:
    probs = b.node("Softmax", [logits], "softmax", axis=1)[0]
    if policy == "score_margin":
        return _margin(b, probs)
    if policy == "max_prob":
        return _max_prob(b, probs)
    if policy == "entropy":
        return _entropy_confidence(b, probs, classes)
    if policy == "learned" and model is not None:
        mean, scale, weights, bias = model.exits[exit_id]
        top = b.node("ReduceMax", [logits], "toplogit", axes=[1], keepdims=0)[0]
        average = b.node("ReduceMean", [logits], "meanlogit", axes=[1], keepdims=0)[0]
        features = [_max_prob(b, probs), _margin(b, probs), _entropy_confidence(b, probs, classes)]
        features.append(b.node("Sub", [top, average], "spread")[0])
        axis = b.constant(np.array([1], dtype=np.int64), "axis")
        columns = [b.node("Unsqueeze", [f, axis], "col")[0] for f in features]
        x = b.node("Concat", columns, "features", axis=1)[0]
        x = b.node("Sub", [x, b.constant(np.asarray(mean, dtype=np.float32), "mean")], "centred")[0]
        x = b.node("Div", [x, b.constant(np.asarray(scale, dtype=np.float32), "scale")], "scaled")[0]
        z = b.node("MatMul", [x, b.constant(np.asarray(weights, dtype=np.float32).reshape(-1, 1), "w")], "z")[
            0
        ]
        z = b.node("Add", [z, b.constant(np.asarray([bias], dtype=np.float32), "b")], "zb")[0]
        squeezed = b.node("Squeeze", [z, axis], "z1d")[0]
        return b.node("Sigmoid", [squeezed], "confidence")[0]
    raise ValueError(f"no ONNX form of exit policy {policy!r} (learned needs its fitted model)")


def deployment_graph(
    segment: onnx.ModelProto,
    head: onnx.ModelProto,
    *,
    input_name: str,
    features_name: str,
    logits_name: str,
    threshold: float | None,
    policy: str,
    classes: int,
    exit_id: int,
    model: LearnedConfidence | None = None,
    temperature: float = 1.0,
) -> onnx.ModelProto:
    """Segment + head + decision as one graph (see the module docstring); `threshold` None: the final exit.
    The policy sees the logits divided by the exit's `temperature`; `logits` and `prediction` are unscaled."""
    merged = onnx.compose.merge_models(
        segment,
        head,
        io_map=[(features_name, features_name)],  # names before the prefixes (merge_models adds them)
        prefix1="s_",
        prefix2="h_",
        outputs=[f"s_{features_name}", f"h_{logits_name}"],
    )
    graph = merged.graph
    b = _Builder(graph, "d_")
    logits = f"h_{logits_name}"
    rename = {f"s_{features_name}": FEATURES, f"h_{logits_name}": LOGITS, f"s_{input_name}": input_name}
    prediction = b.node("ArgMax", [logits], "argmax", axis=1, keepdims=0)[0]
    outputs = [(prediction, PREDICTION, TensorProto.INT64)]
    if threshold is not None:
        scaled = logits
        if temperature != 1.0:
            divisor = b.constant(np.array(temperature, dtype=np.float32), "temperature")
            scaled = b.node("Div", [logits, divisor], "scaled_logits")[0]
        confidence = _confidence(b, scaled, policy, classes, exit_id, model)
        limit = b.constant(np.array(threshold, dtype=np.float32), "threshold")
        outputs.append((b.node("GreaterOrEqual", [confidence, limit], "leave")[0], LEAVE, TensorProto.BOOL))
    for produced, name, dtype in outputs:
        graph.node.append(helper.make_node("Identity", [produced], [name], name=f"d_{name}"))
        graph.output.append(helper.make_tensor_value_info(name, dtype, ["batch"]))
    for node in graph.node:  # the graph's own interface names, without the merge prefixes
        node.input[:] = [rename.get(n, n) for n in node.input]
        node.output[:] = [rename.get(n, n) for n in node.output]
    for value in [*graph.input, *graph.output]:
        value.name = rename.get(value.name, value.name)
    return merged
