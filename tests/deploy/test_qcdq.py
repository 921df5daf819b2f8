"""The search's in-memory export is the very graph the written ONNX file holds, so it prices the same layers."""

from __future__ import annotations

import onnx
import pytest

from codesign.cost.graph import parse_onnx
from codesign.deploy.qcdq import export_qcdq, max_output_difference, onnxruntime_session, qcdq_graph
from codesign.network.model import build_model
from codesign.spec import ExitBranch, StageSpec
from tests.conftest import tiny_spec


def _specs():
    plain = tiny_spec()
    blocks = tiny_spec()
    stages = (
        StageSpec(depth=1, width=8, kernel=3, stride=1, weight_bits=8, act_bits=8),
        StageSpec(
            depth=2, width=16, kernel=3, stride=2, weight_bits=4, act_bits=4, block="mbconv", expansion=2
        ),
        StageSpec(depth=1, width=24, kernel=3, stride=2, weight_bits=8, act_bits=4, block="basic"),
    )
    conv_head = ExitBranch(convs=1, channels=8, kernel=3, pool=2, stride=2)
    from dataclasses import replace

    blocks = replace(blocks, stages=stages, branches=(conv_head, ExitBranch(pool=1), ExitBranch(pool=1)))
    return [plain, blocks]


@pytest.mark.parametrize("spec", _specs(), ids=["conv", "mbconv-basic-convhead"])
def test_the_in_memory_graph_is_the_exported_file_and_gives_the_same_layer_list(spec, tmp):
    model = build_model(spec).eval()
    written = onnx.load(export_qcdq(model, tmp / "a.onnx"))
    in_memory = qcdq_graph(model)
    assert not written.metadata_props and in_memory.graph == written.graph
    assert parse_onnx(in_memory, source="a.onnx") == parse_onnx(tmp / "a.onnx")


def test_qcdq_export_runs_in_onnxruntime_and_matches_pytorch(tiny_model, digits, tmp):
    path = export_qcdq(tiny_model, tmp / "net.onnx")
    proto = onnx.load(str(path))
    assert [o.name for o in proto.graph.output] == ["exit0", "exit1", "exit2"]
    assert [i.name for i in proto.graph.input] == ["input"]
    assert {n.op_type for n in proto.graph.node} >= {"QuantizeLinear", "DequantizeLinear", "Conv", "Gemm"}
    images = digits.test.images[:32]
    assert max_output_difference(tiny_model, path, images) < 1e-4
    outputs = onnxruntime_session(path).run(None, {"input": images.numpy()})
    assert outputs[0].shape == (32, 10)
    assert list(tmp.iterdir()) == [path]  # no temporary files left behind
