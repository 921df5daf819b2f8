"""In-memory-computing accelerators through ZigZag's own in-memory-compute path.

ZigZag costs an IMC array (`operational_array.is_imc: true`, e.g. its `aimc.yaml` and `dimc.yaml`) with its
IMC cost model, with mixed spatial mappings, and with its inter-layer data-locality stages, which decide
per layer which memory levels its operands need from the whole network's graph (what
`get_hardware_performance_zigzag(..., in_memory_compute=True)` runs). Because those decisions depend on the
neighbouring layers, an IMC network is costed as one ZigZag workload (the compute layers and the edges
between them), not layer by layer; results are cached per network.

codesign's additions to the digital cost model do not apply here and are not used: precision-aware MAC
energy (the IMC model prices bit precision through its own bit-serial input and ADC model), precision-
scalable throughput, and residency (ZigZag's data-locality stages decide it).
"""

from __future__ import annotations

from typing import Any

from codesign.cost.cache import cost_key
from codesign.cost.graph import SOURCE_BOTH_CONSTANT, SOURCE_BOTH_FROM_LAYERS, LayerSpec
from codesign.cost.records import LayerCost
from codesign.cost.settings import CostOptions
from codesign.hardware.target import HardwareTarget

MODEL_IMC = "zigzag in-memory compute (its IMC cost model and inter-layer data locality)"


def is_imc(target: HardwareTarget) -> bool:
    return bool(target.accelerator_data["operational_array"].get("is_imc"))


def workload_dicts(layers: list[LayerSpec]) -> list[dict[str, Any]]:
    """The layers as one ZigZag workload: ids in order, operand sources along the network's edges."""
    ids = {layer.name: index for index, layer in enumerate(layers)}
    workload = []
    for index, layer in enumerate(layers):
        data = layer.zigzag_dict(layer_id=index)
        parents = [ids[name] for name in layer.inputs_from if name in ids]
        if layer.operand_source == SOURCE_BOTH_CONSTANT or not parents:
            source = {"W": index, "I": index}
        elif layer.operand_source == SOURCE_BOTH_FROM_LAYERS:
            source = {"W": parents[-1], "I": parents[0]}
        else:
            source = {"W": index, "I": parents[0]}
        data["operand_source"] = source
        workload.append(data)
    return workload


def network_key(layers: list[LayerSpec], target: HardwareTarget, options: CostOptions) -> str:
    return cost_key({"workload": workload_dicts_key(layers), "path": "imc"}, target, options)


def workload_dicts_key(layers: list[LayerSpec]) -> list[Any]:
    return [[layer.geometry_key(), list(layer.inputs_from)] for layer in layers]


def imc_layer_costs(layers: list[LayerSpec], target: HardwareTarget, options: CostOptions) -> list[LayerCost]:
    """Per-layer costs of the whole network through ZigZag's in-memory-compute pipeline."""
    from zigzag.parser.workload_factory import WorkloadFactory
    from zigzag.stages.exploit_data_locality_stages import (
        ExploitInterLayerDataLocalityStage,
        SearchInterLayerDataLocalityStage,
    )
    from zigzag.stages.main import MainStage
    from zigzag.stages.workload_iterator import WorkloadStage

    from codesign.cost.zigzag import layer_cost_of, mapping_settings, mapping_stages

    workload = WorkloadFactory(workload_dicts(layers), target.mapping_data).create()
    main = MainStage(
        [
            SearchInterLayerDataLocalityStage,
            WorkloadStage,
            ExploitInterLayerDataLocalityStage,
            *mapping_stages(options.opt),
        ],
        workload=workload,
        enable_mix_spatial_mapping_generation=True,
        **mapping_settings(target, options),
    )
    by_id = {layer.id: cme for cme, (layer, _) in main.run()}
    return [layer_cost_of(by_id[index]) for index in range(len(layers))]
