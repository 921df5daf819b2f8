from __future__ import annotations

import logging
from pathlib import Path

import onnx
import pandas as pd
import pytest
import zigzag

from codesign.cli.main import main
from codesign.cost.engine import CostEngine
from codesign.cost.graph import layers_from_onnx
from codesign.cost.report import cost_onnx
from codesign.cost.settings import CostModelSettings, CostOptions
from codesign.hardware.target import zigzag_accelerator_file
from codesign.hardware.zigzag_files import capped_mapping_file
from tests.cost.test_graph import export_float


def test_per_layer_costs_equal_zigzag_on_the_whole_graph(tmp, edge_tpu):
    from zigzag.api import get_hardware_performance_zigzag

    path = export_float(tmp / "float.onnx")
    inferred = tmp / "inferred.onnx"
    onnx.save(onnx.shape_inference.infer_shapes(onnx.load(str(path))), str(inferred))
    energy, latency, _ = get_hardware_performance_zigzag(
        str(inferred),
        str(zigzag_accelerator_file(edge_tpu, tmp)),
        str(edge_tpu.mapping_path),
        opt=FAST.opt,
        lpf_limit=FAST.lpf_limit,
        dump_folder=str(tmp / "zigzag_out"),
        loma_show_progress_bar=False,
    )
    layers = layers_from_onnx(path)
    costs = CostEngine(edge_tpu, FAST).layer_costs(layers)
    assert sum(c.energy_pj for c in costs) == pytest.approx(energy, rel=1e-6)
    assert sum(c.latency_cycles for c in costs) == pytest.approx(latency, rel=1e-6)
    # the same through the `codesign cost` API with the extras switched off
    report = cost_onnx(path, edge_tpu, options=FAST, settings=CostModelSettings.zigzag_only())
    assert report.layers["energy_pj"].sum() == pytest.approx(energy, rel=1e-6)
    assert report.exits["latency_cycles"].iloc[-1] == pytest.approx(latency, rel=1e-6)


ZIGZAG_INPUTS = Path(zigzag.__file__).parent / "inputs"


# ZigZag 3.9.1's shipped hardware files, each with the mapping file it is meant for
SHIPPED = {
    "tpu_like": "tpu_like",
    "edge_tpu_like": "edge_tpu_like",
    "ascend_like": "ascend_like",
    "meta_prototype": "meta_prototype_like",
    "tesla_npu_like": "tesla_npu_like",
    "eyeriss_like": "default",
    "generic_array_cacti": "default",
    "gemm_l1": "gemm_l1",
    "gemm_l1_l3": "gemm_l1_l3",
    "aimc": "default_imc",
    "dimc": "default_imc",
}


FAST = CostOptions(opt="EDP", lpf_limit=3)


@pytest.mark.parametrize("hardware", list(SHIPPED))
def test_every_shipped_zigzag_example_through_codesign_cost_equals_zigzag(
    hardware: str, network: Path, tmp: Path, capsys: pytest.CaptureFixture[str]
):
    from zigzag.api import get_hardware_performance_zigzag

    accelerator = ZIGZAG_INPUTS / "hardware" / f"{hardware}.yaml"
    mapping = ZIGZAG_INPUTS / "mapping" / f"{SHIPPED[hardware]}.yaml"
    imc = hardware in ("aimc", "dimc")
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(network)))
    result = get_hardware_performance_zigzag(
        proto,
        str(accelerator),
        str(mapping),
        opt=FAST.opt,
        lpf_limit=FAST.lpf_limit,
        in_memory_compute=imc,
        dump_folder=str(tmp / "zigzag"),
        loma_show_progress_bar=False,
    )
    logging.disable(logging.CRITICAL)  # ZigZag's API switches INFO logging on for everyone
    per_layer = {cme.layer.name: cme for cme, _ in result[-1][0][1]}
    out = tmp / "cost"
    # the shipped files unchanged: an unrolling wider than the array (default.yaml's K 32 on eyeriss_like's
    # 14-wide D1) is costed as ZigZag cuts it, with one warning line naming the mapping entry
    cut = capped_mapping_file(accelerator, mapping, tmp / "mapping") != mapping
    assert cut == (hardware == "eyeriss_like")
    argv = [
        "cost", str(network), "-a", str(accelerator), "--mapping", str(mapping), "--zigzag-only",
        "--opt", FAST.opt, "--lpf-limit", str(FAST.lpf_limit), "--out", str(out), "--cost-cache", str(tmp / "c.sqlite"),
    ]  # fmt: skip
    assert main(argv) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    if cut:  # K 32 on the 14-wide D1, C 32 on the 12-wide D2: one line per mapping entry
        assert len(warned) == 2 and all(str(mapping) in line for line in warned), warned
        assert "[0] (default).spatial_mapping.D1: unrolls K 32" in warned[0] and "cut to K 14" in warned[0]
        assert "[0] (default).spatial_mapping.D2: unrolls C 32" in warned[1] and "cut to C 12" in warned[1]
    else:
        assert not warned, warned
    layers = pd.read_csv(out / "layers.csv").set_index("name")
    for name, cme in per_layer.items():
        assert layers.loc[name, "energy_pj"] == pytest.approx(cme.energy_total, rel=1e-9), name
        assert layers.loc[name, "latency_cycles"] == pytest.approx(cme.latency_total2, rel=1e-9), name
    assert layers["energy_pj"].sum() == pytest.approx(result[0], rel=1e-9)
    assert layers["latency_cycles"].sum() == pytest.approx(result[1], rel=1e-9)
