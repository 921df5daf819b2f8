from __future__ import annotations

import onnx
import pytest
import torch
from torch import nn

from codesign.cost.graph import layers_from_onnx, parse_onnx
from codesign.cost.layer_specs import SOURCE_BOTH_CONSTANT
from codesign.deploy.qcdq import export_qcdq
from codesign.errors import CodesignError


def test_layers_from_qcdq_recover_bit_widths_and_segments(tiny_model, tmp):
    layers = layers_from_onnx(export_qcdq(tiny_model, tmp / "net.onnx"))
    assert [layer.segment for layer in layers] == ["stage0", "head0", "stage1", "head1", "stage2", "head2"]
    by_segment = {layer.segment: layer for layer in layers}
    # stage bits (4, 8, 4); each conv's input comes from the previous stage's activation quantizer
    assert (
        by_segment["stage0"].weight_bits,
        by_segment["stage0"].act_bits,
        by_segment["stage0"].output_bits,
    ) == (4, 4, 4)
    assert (
        by_segment["stage1"].weight_bits,
        by_segment["stage1"].act_bits,
        by_segment["stage1"].output_bits,
    ) == (8, 4, 8)
    assert (by_segment["stage2"].weight_bits, by_segment["stage2"].act_bits) == (4, 8)
    assert by_segment["head1"].weight_bits == 8 and by_segment["head1"].act_bits == 8
    assert all(layer.quantized for layer in layers)
    conv = by_segment["stage1"]
    assert dict(zip(conv.loop_dims, conv.loop_sizes, strict=True)) == {
        "B": 1,
        "K": 16,
        "G": 1,
        "OX": 4,
        "OY": 4,
        "C": 8,
        "FX": 3,
        "FY": 3,
    }
    assert conv.macs == 16 * 4 * 4 * 8 * 9
    head = by_segment["head2"]
    assert dict(zip(head.loop_dims, head.loop_sizes, strict=True)) == {"C": 16 * 4, "D": 1, "K": 10}


class FloatNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.c2(torch.relu(self.c1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def export_float(path):
    torch.onnx.export(
        FloatNet().eval(), (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False, opset_version=13
    )
    return path


def test_float_onnx_gets_zigzag_default_precisions(tmp):
    layers = layers_from_onnx(export_float(tmp / "float.onnx"))
    assert [layer.op_type for layer in layers] == ["Conv", "Conv", "Gemm"]
    assert all((layer.weight_bits, layer.act_bits, layer.partial_sum_bits) == (8, 8, 16) for layer in layers)
    assert not any(layer.quantized for layer in layers)
    assert layers[0].operand_source == SOURCE_BOTH_CONSTANT  # fed by the graph input, as ZigZag sees it


def test_onnx_of_the_wrong_kind_gets_one_line_error(tmp):
    garbage = tmp / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf at all \x00\xff")
    with pytest.raises(CodesignError) as info:
        layers_from_onnx(garbage)
    assert str(garbage) in str(info.value) and "\n" not in str(info.value)
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])
    relu_only = onnx.helper.make_model(
        onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    )
    path = tmp / "relu.onnx"
    onnx.save(relu_only, str(path))
    with pytest.raises(CodesignError, match=r"relu\.onnx: graph: expected at least one Conv"):
        layers_from_onnx(path)
    with pytest.raises(CodesignError, match="missing.onnx: file"):
        layers_from_onnx(tmp / "missing.onnx")


class TwoExitFloatNet(nn.Module):
    """A foreign early-exit graph: no codesign module names, two outputs."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.early = nn.Linear(8, 10)
        self.late = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.a(x))
        early = self.early(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
        y = torch.relu(self.b(x))
        return early, self.late(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


def test_exits_of_a_foreign_graph_come_from_its_structure(tmp):
    path = tmp / "foreign.onnx"
    torch.onnx.export(
        TwoExitFloatNet().eval(),
        (torch.zeros(1, 1, 8, 8),),
        str(path),
        dynamo=False,
        opset_version=13,
        output_names=["early", "late"],
    )
    network = parse_onnx(path)
    assert network.exit_stages == (0, 1) and network.output_names == ("early", "late")
    assert [layer.segment for layer in network.layers] == ["stage0", "head0", "stage1", "stage1"]
    assert sorted(op.segment for op in network.operators) == ["head0", "stage1"]
