from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import yaml

from codesign.cli.main import main
from codesign.cost.engine import CostEngine
from codesign.cost.layer_specs import conv_layer
from codesign.cost.settings import CostOptions
from codesign.errors import CodesignError
from codesign.hardware.memory import key_figures
from codesign.hardware.target import (
    library_names,
    load_hardware,
)

ZIGZAG_INPUTS = Path(__import__("zigzag").__file__).parent / "inputs"


FAST = CostOptions(lpf_limit=2)


def conv(name: str, channels_in: int, channels_out: int, size: int, kernel: int, bits: int = 8):
    """A same-padded, stride-1 convolution on a size x size map."""
    return conv_layer(
        name,
        "stage0",
        batch=1,
        in_channels=channels_in,
        out_channels=channels_out,
        groups=1,
        in_hw=(size, size),
        out_hw=(size, size),
        kernel=(kernel, kernel),
        strides=(1, 1),
        dilations=(1, 1),
        pads=(kernel // 2,) * 4,
        weight_bits=bits,
        act_bits=bits,
        output_bits=bits,
        partial_sum_bits=2 * bits,
        operand_source="input_from_layer",
        quantized=True,
    )


def small_conv(bits: int = 8):
    return conv("c", 16, 32, 8, 3, bits)


def test_library_has_the_required_shapes_and_each_costs_a_layer():
    names = library_names()
    assert {"edge_tpu_like", "eyeriss_like", "mcu_npu", "tpu_like_edge", "edge_tpu_x4"} <= set(names)
    latencies = {}
    for name in names:
        target = load_hardware(name)
        figures = key_figures(target)
        assert figures["clock_mhz"] > 0 and figures["peak_macs_per_cycle"] > 0 and target.description
        assert not target.clock_assumed
        cost = CostEngine(target, FAST).layer_costs([small_conv()])[0]
        assert math.isfinite(cost.energy_pj) and cost.energy_pj > 0 and cost.latency_cycles > 0
        latencies[name] = cost.latency_cycles
    assert load_hardware("edge_tpu_x4").cores == 4 and load_hardware("edge_tpu_x4").interconnect is not None
    assert latencies["mcu_npu"] > latencies["edge_tpu_like"]
    assert (
        load_hardware("mcu_npu").throughput_factor(4, 4)
        > 1
        == load_hardware("mcu_npu").throughput_factor(8, 8)
    )


def test_plain_zigzag_yaml_works_unchanged(tmp):
    accelerator = tmp / "tpu_like.yaml"
    shutil.copy(ZIGZAG_INPUTS / "hardware" / "tpu_like.yaml", accelerator)
    target = load_hardware(accelerator, ZIGZAG_INPUTS / "mapping" / "tpu_like.yaml")
    assert target.clock_assumed and target.clock_hz == 1e9 and target.cores == 1
    assert CostEngine(target, FAST).layer_costs([small_conv()])[0].energy_pj > 0


def test_overrides_change_the_hardware_and_its_cache_identity():
    base = load_hardware("edge_tpu_like")
    cheaper = load_hardware("edge_tpu_like", overrides={"operational_array.unit_energy": 0.02})
    slower = load_hardware("edge_tpu_like", overrides={"codesign.clock_mhz": 100})
    assert (
        cheaper.digest != base.digest and slower.digest == base.digest
    )  # the clock does not change ZigZag's result
    assert slower.clock_hz == 100e6
    a, b = (
        CostEngine(base, FAST).layer_costs([small_conv()])[0],
        CostEngine(cheaper, FAST).layer_costs([small_conv()])[0],
    )
    assert b.mac_energy_pj == pytest.approx(a.mac_energy_pj / 2)
    bigger = load_hardware("edge_tpu_like", overrides={"operational_array.sizes": [16, 16, 4, 4]})
    assert key_figures(bigger)["peak_macs_per_cycle"] == 4 * key_figures(base)["peak_macs_per_cycle"]


def test_a_resized_array_is_used_by_the_mapping_not_left_idle():
    base = load_hardware("edge_tpu_like")
    bigger = load_hardware("edge_tpu_like", overrides={"operational_array.sizes": [16, 16, 4, 4]})
    smaller = load_hardware("edge_tpu_like", overrides={"operational_array.sizes": [4, 4, 4, 4]})
    assert bigger.mapping_data[0]["spatial_mapping"]["D1"] == ["K, 16"]  # was K, 8: it filled D1
    assert smaller.mapping_data[0]["spatial_mapping"]["D2"] == ["C, 4"]
    assert bigger.mapping_data[0]["spatial_mapping"]["D3"] == ["OX, 4"]  # unchanged dimension
    assert len({base.digest, bigger.digest, smaller.digest}) == 3
    costs = {
        name: CostEngine(target, FAST).layer_costs([small_conv()])[0]
        for name, target in (("base", base), ("bigger", bigger), ("smaller", smaller))
    }
    # 16 input and 32 output channels: each doubling of K and C unrolling divides the compute cycles by 4
    assert (
        costs["smaller"].ideal_cycles == 4 * costs["base"].ideal_cycles == 16 * costs["bigger"].ideal_cycles
    )
    assert costs["smaller"].latency_cycles > costs["base"].latency_cycles
    # ...but 64 bit/cycle off-chip bandwidth bounds this layer: the bigger array is no faster (memory-bound)
    assert costs["bigger"].latency_cycles == pytest.approx(costs["base"].latency_cycles, rel=0.01)
    wider = load_hardware(
        "edge_tpu_like",
        overrides={
            "operational_array.sizes": [16, 16, 4, 4],
            "memories.dram.ports.0.bandwidth_min": 256,
            "memories.dram.ports.0.bandwidth_max": 256,
        },
    )
    assert (
        CostEngine(wider, FAST).layer_costs([small_conv()])[0].latency_cycles
        < 0.6 * costs["base"].latency_cycles
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"operational_array.no_such_field": 3},
            r"operational_array\.no_such_field: expected an existing field",
        ),
        ({"memories.nope.size": 3}, r"memories\.nope\.size: expected an existing field"),
        ({"operational_array.dimensions": 3}, r"expected a numeric field"),
        ({"operational_array.unit_energy": "cheap"}, r"expected a numeric field"),
        ({"codesign.clock_mhz": -5}, r"codesign\.clock_mhz: expected a positive number"),
    ],
)
def test_bad_overrides_get_one_line_errors(overrides, message):
    with pytest.raises(CodesignError, match=message) as info:
        load_hardware("edge_tpu_like", overrides=overrides)
    assert "edge_tpu_like.yaml" in str(info.value) and "\n" not in str(info.value)


def test_accelerators_command_lists_the_library(capsys):
    assert main(["accelerators"]) == 0
    out = capsys.readouterr().out
    for name in library_names():
        assert name in out
    assert "peak_macs_per_cycle" in out and "clock_mhz" in out


def test_malformed_mapping_gets_one_line_error(tmp):
    accelerator = tmp / "acc.yaml"
    shutil.copy(load_hardware("edge_tpu_like").accelerator_path, accelerator)
    (tmp / "acc.mapping.yaml").write_text(
        "- name: default\n  spatial_mapping: {D1: [K, 8]}\n  memory_operand_links: 5\n"
    )
    with pytest.raises(CodesignError) as info:
        load_hardware(accelerator)
    message = str(info.value)
    assert "acc.mapping.yaml" in message and "expected" in message and "\n" not in message


def test_resident_accelerator_keeps_activations_on_chip_and_still_reads_weights_off_chip():
    activation_heavy = conv("wide_map", 16, 16, 28, 1)  # 12.5 KB in and out, 256 weights
    weight_heavy = conv("deep_filter", 128, 128, 2, 3)  # 147 KB of weights, 0.5 KB in and out
    like, resident = load_hardware("edge_tpu_like"), load_hardware("edge_tpu_resident")
    assert key_figures(resident)["on_chip_kib_I"] == key_figures(like)["on_chip_kib_I"] == 2048
    costs = {
        name: CostEngine(target, FAST).layer_costs([activation_heavy, weight_heavy])
        for name, target in (("like", like), ("resident", resident))
    }
    # Off-chip activation traffic was most of the wide map's energy; the weight-heavy layer hardly changes.
    assert costs["resident"][0].energy_pj < costs["like"][0].energy_pj / 3
    assert costs["resident"][1].energy_pj == pytest.approx(costs["like"][1].energy_pj, rel=0.1)


def test_chip_area_sums_the_files_area_fields_and_says_when_there_are_none(tmp_path: Path):

    from codesign.hardware.area import NO_AREA, chip_area
    from codesign.hardware.memory import memory_roles
    from codesign.hardware.target import library_names

    # every library accelerator states its areas (memories from CACTI, the array per MAC: library_areas.py)
    assert all(chip_area(load_hardware(name)).total > 0 for name in library_names())
    data = yaml.safe_load(load_hardware("edge_tpu_like").accelerator_path.read_text())
    for memory in data["memories"].values():
        memory["area"] = 0
    (tmp_path / "no_area.yaml").write_text(yaml.safe_dump(data))
    mapping = load_hardware("edge_tpu_like").mapping_path
    assert chip_area(load_hardware(tmp_path / "no_area.yaml", mapping)) is None and "not modelled" in NO_AREA
    eyeriss = load_hardware("eyeriss_like")
    data = yaml.safe_load(Path(eyeriss.accelerator_path).read_text())
    sizes = dict(
        zip(data["operational_array"]["dimensions"], data["operational_array"]["sizes"], strict=True)
    )
    by_hand = sum(
        memory["area"]
        * math.prod(n for d, n in sizes.items() if d not in memory.get("served_dimensions", []))
        for memory in data["memories"].values()
    ) + data["operational_array"]["unit_area"] * math.prod(sizes.values())
    area = chip_area(eyeriss)
    assert area is not None and area.total == pytest.approx(by_hand) and by_hand > 0
    assert "area unit" in area.describe()
    roles = memory_roles(eyeriss)
    assert (
        roles["dram"] == "off_chip" and roles["rf_64B_W"] == "register_file" and roles["sram_1M"] == "buffer"
    )


def test_chip_area_follows_a_searched_array_size_and_serves_as_objective_and_limit():
    from types import SimpleNamespace

    from codesign.hardware.area import chip_area
    from codesign.hardware.target import load_variant
    from codesign.search.objectives import OBJECTIVES, constraint_values
    from codesign.search.settings import Constraints

    eyeriss = load_hardware("eyeriss_like")
    sizes = eyeriss.accelerator_data["operational_array"]["sizes"]
    smaller = load_variant(eyeriss, {"operational_array.sizes": [max(1, s // 2) for s in sizes]})
    assert chip_area(smaller).total < chip_area(eyeriss).total
    result = SimpleNamespace(chip_area=chip_area(smaller).total, expected_val=None)
    assert OBJECTIVES["area"].value(result) == chip_area(smaller).total
    limit = Constraints(max_area=chip_area(eyeriss).total)
    assert constraint_values(result, limit)[0] < 0  # met
    assert constraint_values(SimpleNamespace(chip_area=2 * limit.max_area, expected_val=None), limit)[
        0
    ] == pytest.approx(1.0)


def test_bad_accelerator_inputs_get_one_line_errors(tmp):
    with pytest.raises(CodesignError, match="no_such_accel.*name: expected one of"):
        load_hardware("no_such_accel")
    broken = tmp / "broken.yaml"
    broken.write_text("name: x\nmemories: [unclosed\n")
    (tmp / "broken.mapping.yaml").write_text("- name: default\n")
    with pytest.raises(CodesignError, match=r"broken\.yaml: line \d+: expected valid YAML"):
        load_hardware(broken)
    wrong = tmp / "wrong.yaml"
    wrong.write_text("name: x\nmemories: {}\noperational_array: {unit_energy: fast}\n")
    (tmp / "wrong.mapping.yaml").write_text(Path(load_hardware("edge_tpu_like").mapping_path).read_text())
    with pytest.raises(CodesignError) as info:
        load_hardware(wrong)
    assert (
        str(wrong) in str(info.value)
        and "operational_array" in str(info.value)
        and "\n" not in str(info.value)
    )
    lonely = tmp / "lonely.yaml"
    lonely.write_text(Path(load_hardware("edge_tpu_like").accelerator_path).read_text())
    with pytest.raises(CodesignError, match=r"lonely\.mapping\.yaml: file: expected the mapping YAML"):
        load_hardware(lonely)


def test_fingerprints_of_targets_without_dvfs_stay_as_runs_recorded_them():
    """A run store refuses to continue on another fingerprint: features added to the target (here DVFS)
    must not change the fingerprint of targets that do not use them. Pinned: edge_tpu_like as shipped."""
    from codesign.hardware.target import load_hardware

    assert load_hardware("edge_tpu_like").fingerprint == "d38621754bacff9d"
