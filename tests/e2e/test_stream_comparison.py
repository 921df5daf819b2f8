"""The Stream comparison's inputs: codesign's four-core chip and its networks as Stream reads them
(`benchmarks/stream_comparison.py`); with Stream installed (`bash benchmarks/stream/setup.sh`), one real run."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import onnx
import pytest
import yaml

from codesign.hardware.target import load_hardware

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location(
    "stream_comparison", ROOT / "benchmarks" / "stream_comparison.py"
)
comparison = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(comparison)


def test_the_chip_in_streams_format_prices_what_codesigns_does(tmp_path: Path):
    source = ROOT / "accelerators" / "edge_tpu_x4.yaml"
    system = yaml.safe_load(comparison.stream_hardware(source, tmp_path).read_text())
    target = load_hardware("edge_tpu_x4")
    compute = [core for core in system["cores"].values() if "core.yaml" in core]
    assert len(compute) == target.cores == 4
    bus = next(link for link in system["core_connectivity"] if link["type"] == "bus")
    assert bus["unit_energy_cost"] / bus["bandwidth"] == pytest.approx(target.interconnect.energy_pj_per_bit)
    core = yaml.safe_load((tmp_path / "cores" / "core.yaml").read_text())
    offchip = yaml.safe_load((tmp_path / "cores" / "offchip.yaml").read_text())
    original = yaml.safe_load(source.read_text())["memories"]
    assert set(core["memories"]) == set(original) - {"dram"}  # the core: every on-chip level, unchanged
    dram, mine = offchip["memories"]["dram"], original["dram"]
    per_bit = dram["r_cost"] / dram["ports"][0]["bandwidth_max"]
    assert per_bit == pytest.approx(mine["r_cost"] / mine["ports"][0]["bandwidth_max"])  # same pJ per bit
    assert dram["ports"][0]["bandwidth_max"] == 4 * mine["ports"][0]["bandwidth_max"]  # a port per core


def test_an_early_exit_network_reaches_stream_as_codesign_costs_it(tiny_model, tmp_path: Path):
    from codesign.deploy.qcdq import export_qcdq

    exported = tmp_path / "eenn.onnx"
    export_qcdq(tiny_model, exported)
    outputs = [o.name for o in onnx.load(str(exported)).graph.output]
    for output in [None, outputs[0]]:
        prepared = onnx.load(str(comparison.stream_ready(exported, tmp_path / "s.onnx", output)))
        ops = Counter(node.op_type for node in prepared.graph.node)
        assert not {"Clip", "BatchNormalization", "AveragePool"} & set(ops)  # fused, as codesign takes them
        assert ops["Conv"] + ops["Gemm"] > 0
        assert [o.name for o in prepared.graph.output] == (outputs if output is None else [output])
        (graph_input,) = prepared.graph.input
        assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.INT8  # the chip receives int8
        assert graph_input.type.tensor_type.shape.dim[0].dim_value == 1


STREAM = ROOT / ".stream-venv" / "bin" / "python"


@pytest.mark.skipif(not STREAM.is_file(), reason="Stream is not installed (bash benchmarks/stream/setup.sh)")
def test_stream_prices_resnet18_on_the_four_core_chip(tmp_path: Path):
    hardware = comparison.stream_hardware(ROOT / "accelerators" / "edge_tpu_x4.yaml", tmp_path / "hw")
    model = comparison.stream_ready(comparison.ZIGZAG_WORKLOADS / "resnet18.onnx", tmp_path / "r.onnx")
    result = comparison.run_stream(STREAM, hardware, model, time_limit_s=30, timeout_s=900)
    assert "error" not in result, result
    assert result["cycles"] > 0 and result["energy_pj"] > 0
    assert {core for group in result["groups"] for cores in group["cores"].values() for core in cores} == {
        0,
        1,
        2,
        3,
    }


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--stream-venv", "/nowhere"], "--stream-venv"),
        (["--networks", "lenet"], "--networks"),
        (["--eenn", "missing.onnx"], "--eenn"),
        (["--timeout", "-1"], "--timeout"),
    ],
)
def test_a_bad_command_line_is_one_line_naming_the_option_and_exit_2(argv, option, tmp_path: Path):
    import subprocess
    import sys

    venv = [] if "--stream-venv" in argv else ["--stream-venv", str(tmp_path / "venv")]
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").write_text("")  # present: the other options are checked
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "stream_comparison.py"), *venv, *argv, "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert option in line and not (tmp_path / "o").exists()
