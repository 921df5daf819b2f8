"""One layer through ZigZag's mapping search and cost model.

We compose ZigZag's own stages below its workload iterator (spatial mapping generation, LOMA
temporal mapping search, cost model evaluation, min-reduction), i.e. exactly what
`zigzag.api.get_hardware_performance_zigzag` runs for each layer, without its file-dumping and
visualisation stages (the latter crashes on layers without temporal loops).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from codesign.cost.layer_specs import LayerSpec
from codesign.cost.records import LatencyParts, LayerCost, LayerMapping, MemoryEnergy
from codesign.cost.settings import CostOptions
from codesign.hardware.target import HardwareTarget

logging.getLogger("zigzag").setLevel(logging.ERROR)


@lru_cache(maxsize=8)
def accelerator_of(target: HardwareTarget) -> Any:
    from zigzag.parser.accelerator_factory import AcceleratorFactory

    return AcceleratorFactory(target.accelerator_data).create()


def mapping_stages(opt: str) -> list[Any]:
    """ZigZag's stages below its workload iterator: spatial mappings, LOMA temporal mappings, the cost model,
    each level keeping the best mapping by `opt`."""
    from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
    from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
    from zigzag.stages.mapping.temporal_mapping_generator_stage import TemporalMappingGeneratorStage
    from zigzag.stages.results.reduce_stages import MinimalEDPStage, MinimalEnergyStage, MinimalLatencyStage

    reduce = {"energy": MinimalEnergyStage, "latency": MinimalLatencyStage, "EDP": MinimalEDPStage}[opt]
    return [reduce, SpatialMappingGeneratorStage, reduce, TemporalMappingGeneratorStage, CostModelStage]


def mapping_settings(target: HardwareTarget, options: CostOptions) -> dict[str, Any]:
    """The keyword arguments ZigZag's `MainStage` passes to those stages: the accelerator and our options."""
    from zigzag.mapping.temporal_mapping import TemporalMappingType

    return {
        "accelerator": accelerator_of(target),
        "loma_lpf_limit": options.lpf_limit,
        "loma_show_progress_bar": False,
        "nb_mappings_generated": options.nb_spatial_mappings,
        "access_same_data_considered_as_no_access": True,
        "temporal_mapping_type": TemporalMappingType("uneven"),
    }


def zigzag_layer_cost(layer: LayerSpec, target: HardwareTarget, options: CostOptions) -> LayerCost:
    from zigzag.parser.workload_factory import LayerNodeFactory
    from zigzag.stages.main import MainStage

    node = LayerNodeFactory(layer.zigzag_dict(), target.mapping_data).create()
    main = MainStage(
        mapping_stages(options.opt),
        layer=node,
        enable_mix_spatial_mapping_generation=False,
        **mapping_settings(target, options),
    )
    return layer_cost_of(main.run()[0][0])


def layer_cost_of(cme: Any) -> LayerCost:
    """Our record of a ZigZag cost model evaluation, with its energy and latency breakdowns."""
    from zigzag.hardware.architecture.memory_port import DataDirection

    links = cme.layer.memory_operand_links
    memory = []
    for operand, moves in cme.mem_energy_breakdown_further.items():
        levels = cme.mem_hierarchy_dict[links.layer_to_mem_op(operand)]
        for level, energy in zip(levels, moves, strict=True):
            read = energy.get(DataDirection.RD_OUT_TO_HIGH) + energy.get(DataDirection.RD_OUT_TO_LOW)
            write = energy.get(DataDirection.WR_IN_BY_HIGH) + energy.get(DataDirection.WR_IN_BY_LOW)
            memory.append(MemoryEnergy(level.name, str(operand), float(read), float(write)))
    parts = LatencyParts(
        ideal_cycles=float(cme.ideal_cycle),
        spatial_stall_cycles=float(cme.ideal_temporal_cycle - cme.ideal_cycle),
        temporal_stall_cycles=float(cme.latency_total0 - cme.ideal_temporal_cycle),
        onloading_cycles=float(cme.latency_total1 - cme.latency_total0),
        offloading_cycles=float(cme.latency_total2 - cme.latency_total1),
    )
    return LayerCost(
        mapping=mapping_of(cme),
        energy_pj=float(cme.energy_total),
        latency_cycles=float(cme.latency_total2),
        mac_energy_pj=float(cme.mac_energy),
        memory_energy_pj=float(cme.mem_energy),
        ideal_cycles=float(cme.ideal_cycle),
        utilization=float(cme.mac_utilization1),
        memory=tuple(memory),
        latency_parts=parts,
    )


def mapping_of(cme: Any) -> LayerMapping:
    """The spatial unrolling, temporal loop order with the memory of each operand, word accesses per memory
    and operand, and ZigZag's own printout of a cost model evaluation's mapping."""
    import contextlib
    import io

    from zigzag.hardware.architecture.memory_port import DataDirection
    from zigzag.mapping.utils import get_spatial_loops, get_temporal_loops
    from zigzag.visualization.results.print_mapping import print_mapping

    spatial = ", ".join(f"{dim} {end - start:g}" for dim, (start, end), _ in get_spatial_loops(cme))
    operands = [str(op) for op in cme.layer.memory_operand_links.layer_operands]
    temporal = " | ".join(
        f"{dim} {end - start:g} [{' '.join(f'{op}:{mem}' for op, mem in zip(operands, memories, strict=False))}]"
        for dim, (start, end), memories in get_temporal_loops(cme)
    )
    links = cme.layer.memory_operand_links
    accesses = []
    for operand, per_level in cme.memory_word_access.items():
        levels = cme.mem_hierarchy_dict[links.layer_to_mem_op(operand)]
        for level, counts in zip(levels, per_level, strict=False):
            reads = counts.get(DataDirection.RD_OUT_TO_LOW) + counts.get(DataDirection.RD_OUT_TO_HIGH)
            writes = counts.get(DataDirection.WR_IN_BY_LOW) + counts.get(DataDirection.WR_IN_BY_HIGH)
            accesses.append((level.name, str(operand), float(reads), float(writes)))
    text = io.StringIO()
    try:
        with contextlib.redirect_stdout(text):
            print_mapping(cme)
    except ValueError:  # ZigZag's printout needs a temporal loop; a layer that fits the array has none
        text.write(f"Loop ordering for {cme.layer.name}: no temporal loops; spatial: {spatial}\n")
    return LayerMapping(spatial or "-", temporal or "-", tuple(accesses), text.getvalue())
