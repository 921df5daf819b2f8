"""Per-item costs of a network on an accelerator: ZigZag for compute layers, adjusted for precision,
plus an analytic model for the operators ZigZag leaves at zero cost.

Models (all switchable, so that plain ZigZag numbers can be reproduced exactly):
- compute layers: ZigZag's mapping search and cost model (`zigzag_runner`), cached;
- precision-aware MAC energy: ZigZag's MAC energy x `MacEnergyModel.scale(w, a)` (see `hardware`);
  on precision-scalable arrays the compute-bound cycles shrink by the throughput factor
  (latency - ideal_cycles * (1 - 1/factor)); memory-bound stalls are kept as ZigZag found them.
  This latency adjustment is an approximation and is labelled so in every table;
- pooling and residual Add: every input read once from and every output written once to the
  largest on-chip activation memory (per-bit energies and bandwidths of that memory from the
  accelerator YAML), plus one adder operation per input element at the MAC array's adder energy;
  latency is the memory traffic divided by the port bandwidths;
- batch norm, activations and re(de)quantization are taken as fused into the producing layer's
  output stage (no extra cost).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from codesign.cost.engine import CostEngine
from codesign.cost.imc import MODEL_IMC, is_imc
from codesign.cost.layer_specs import DataflowNode, LayerSpec, OperatorSpec
from codesign.cost.records import OFF_CHIP, ON_CHIP, ItemCost, LayerCost, MemoryEnergy
from codesign.cost.residency import ResidencyPlan, plan_residency, resident_target
from codesign.cost.settings import CostModelSettings
from codesign.hardware.memory import activation_buffer
from codesign.hardware.target import HardwareTarget

MODEL_ZIGZAG = "zigzag"
MODEL_PRECISION = "zigzag + precision-aware MAC energy"
MODEL_PRECISION_SCALABLE = "zigzag + precision-aware MAC energy + scaled throughput (approx.)"
MODEL_ANALYTIC = "analytic: activation-buffer traffic + adds"


def precision_adjusted(raw: LayerCost, layer: LayerSpec, target: HardwareTarget) -> tuple[LayerCost, str]:
    scale = target.mac_energy.scale(layer.weight_bits, layer.act_bits)
    mac_energy = raw.mac_energy_pj * scale
    factor = target.throughput_factor(layer.weight_bits, layer.act_bits)
    latency = (
        raw.latency_cycles - raw.ideal_cycles * (1.0 - 1.0 / factor) if factor > 1 else raw.latency_cycles
    )
    parts = raw.latency_parts
    if parts is not None and factor > 1:  # the compute-bound part shrinks; memory-bound stalls stay
        parts = replace(parts, ideal_cycles=parts.ideal_cycles / factor)
    adjusted = LayerCost(
        energy_pj=raw.energy_pj - raw.mac_energy_pj + mac_energy,
        latency_cycles=latency,
        mac_energy_pj=mac_energy,
        memory_energy_pj=raw.memory_energy_pj,
        ideal_cycles=raw.ideal_cycles / factor,
        utilization=raw.utilization,
        memory=raw.memory,
        latency_parts=parts,
        mapping=raw.mapping,
    )
    return adjusted, MODEL_PRECISION_SCALABLE if factor > 1 else MODEL_PRECISION


def adder_energy_pj(target: HardwareTarget, act_bits: int) -> float:
    """One addition of two `act_bits` operands: the MAC unit's adder share scaled to the width (digital), or
    `act_bits` one-bit adders of ZigZag's IMC technology model (in-memory computing; 28 nm)."""
    if is_imc(target):
        from codesign.cost.zigzag import accelerator_of

        return float(accelerator_of(target).operational_array.get_1b_adder_energy()) * act_bits
    unit = float(target.accelerator_data["operational_array"]["unit_energy"])
    model = target.mac_energy
    return unit * (1.0 - model.multiplier_share) * (2 * act_bits) / sum(model.reference_bits)


def operator_cost(op: OperatorSpec, target: HardwareTarget) -> LayerCost:
    buffer = activation_buffer(target)
    read_bits = op.input_elements * op.act_bits
    write_bits = op.output_elements * op.output_bits
    memory_energy = read_bits * buffer.read_pj_per_bit + write_bits * buffer.write_pj_per_bit
    adder_energy = adder_energy_pj(target, op.act_bits)
    latency = math.ceil(read_bits / max(buffer.read_bits_per_cycle, 1.0)) + math.ceil(
        write_bits / max(buffer.write_bits_per_cycle, 1.0)
    )
    return LayerCost(
        energy_pj=memory_energy + op.operations * adder_energy,
        latency_cycles=float(latency),
        mac_energy_pj=op.operations * adder_energy,
        memory_energy_pj=memory_energy,
        ideal_cycles=0.0,
        utilization=0.0,
        memory=(
            MemoryEnergy(buffer.name, "I", read_bits * buffer.read_pj_per_bit, 0.0),
            MemoryEnergy(buffer.name, "O", 0.0, write_bits * buffer.write_pj_per_bit),
        ),
    )


def network_costs(
    layers: list[LayerSpec],
    operators: list[OperatorSpec],
    engine: CostEngine,
    settings: CostModelSettings | None = None,
    target: HardwareTarget | None = None,
    core_of: Callable[[str], int] | None = None,
    plan: ResidencyPlan | None = None,
    dataflow: tuple[DataflowNode, ...] = (),
) -> list[ItemCost]:
    """Costs of every compute layer (and, if enabled, every non-compute operator), in the given order.

    Each compute layer is costed on the hierarchy its residency leaves it (see `cost.residency`);
    `core_of` gives the core of a segment on a multi-core accelerator (weights are resident per core);
    `plan`: the residency plan of these layers when the caller already made it; `dataflow`: the network's
    graph, which in-memory computing needs (`ParsedNetwork.dataflow`)."""
    settings = settings or CostModelSettings()
    target = target or engine.target
    if is_imc(target):
        items = _imc_items(layers, operators, engine, settings, target, dataflow)
    else:
        if plan is None:
            plan = plan_residency(layers, target, settings.residency, core_of or (lambda s: 0), operators)
        items = _digital_items(layers, operators, engine, settings, target, plan)
    if target.energy_scale == 1.0:
        return items
    return [_at_operating_point(item, target) for item in items]


def _at_operating_point(item: ItemCost, target: HardwareTarget) -> ItemCost:
    """Dynamic energy at the accelerator's DVFS operating point (see `hardware.target.OperatingPoint`)."""
    scale, point = target.energy_scale, target.operating_point
    return replace(
        item,
        energy_pj=item.energy_pj * scale,
        mac_energy_pj=item.mac_energy_pj * scale,
        memory_energy_pj=item.memory_energy_pj * scale,
        memory=tuple(replace(m, read_pj=m.read_pj * scale, write_pj=m.write_pj * scale) for m in item.memory),
        model=f"{item.model}; DVFS point {point.index if point else '-'} (dynamic energy x{scale:.3g})",
    )


def _digital_items(
    layers: list[LayerSpec],
    operators: list[OperatorSpec],
    engine: CostEngine,
    settings: CostModelSettings,
    target: HardwareTarget,
    plan: ResidencyPlan,
) -> list[ItemCost]:
    by_variant: dict[HardwareTarget, list[int]] = {}
    for index in range(len(layers)):
        variant = resident_target(target, plan.weights_on_chip[index], plan.activations_on_chip[index])
        by_variant.setdefault(variant, []).append(index)
    raws: dict[int, LayerCost] = {}
    for variant, indices in by_variant.items():
        raws.update(zip(indices, engine.layer_costs([layers[i] for i in indices], variant), strict=True))
    items = []
    for index, layer in enumerate(layers):
        cost, model = (raws[index], MODEL_ZIGZAG)
        if settings.precision_aware_mac:
            cost, model = precision_adjusted(raws[index], layer, target)
        weight_bytes = layer.weight_elements * layer.weight_bits / 8
        on_chip = plan.weights_on_chip[index]
        item = _item(
            layer,
            cost,
            model,
            (ON_CHIP if on_chip else OFF_CHIP) if weight_bytes else "-",
            ON_CHIP if plan.activations_on_chip[index] else OFF_CHIP,
        )
        items.append(
            replace(
                item,
                weight_bytes_on_chip=weight_bytes if on_chip else 0.0,
                weight_bytes_streamed=0.0 if on_chip else weight_bytes,
            )
        )
    return items + (_operator_items(operators, target) if settings.non_compute_ops else [])


def _imc_items(
    layers: list[LayerSpec],
    operators: list[OperatorSpec],
    engine: CostEngine,
    settings: CostModelSettings,
    target: HardwareTarget,
    dataflow: tuple[DataflowNode, ...],
) -> list[ItemCost]:
    """An in-memory-computing accelerator: ZigZag's IMC path for the whole network (see `cost.imc`);
    precision-aware MAC energy and residency do not apply there."""
    items = [
        _item(layer, cost, MODEL_IMC, "zigzag", "zigzag")
        for layer, cost in zip(layers, engine.imc_layer_costs(layers, target, dataflow), strict=True)
    ]
    return items + (_operator_items(operators, target) if settings.non_compute_ops else [])


def _item(layer: LayerSpec, cost: LayerCost, model: str, weights_at: str, activations_at: str) -> ItemCost:
    return ItemCost(
        name=layer.name,
        op_type=layer.op_type,
        segment=layer.segment,
        macs=layer.macs,
        weight_bits=layer.weight_bits,
        act_bits=layer.act_bits,
        output_bits=layer.output_bits,
        output_elements=layer.output_elements,
        weight_elements=layer.weight_elements,
        energy_pj=cost.energy_pj,
        latency_cycles=cost.latency_cycles,
        mac_energy_pj=cost.mac_energy_pj,
        memory_energy_pj=cost.memory_energy_pj,
        utilization=cost.utilization,
        model=model,
        memory=cost.memory,
        latency_parts=cost.latency_parts,
        weights_at=weights_at,
        activations_at=activations_at,
        mapping=cost.mapping,
    )


def _operator_items(operators: list[OperatorSpec], target: HardwareTarget) -> list[ItemCost]:
    items = []
    for op in operators:
        cost = operator_cost(op, target)
        items.append(
            ItemCost(
                name=op.name,
                op_type=op.op_type,
                segment=op.segment,
                macs=0,
                weight_bits=0,
                act_bits=op.act_bits,
                output_bits=op.output_bits,
                output_elements=op.output_elements,
                weight_elements=0,
                energy_pj=cost.energy_pj,
                latency_cycles=cost.latency_cycles,
                mac_energy_pj=cost.mac_energy_pj,
                memory_energy_pj=cost.memory_energy_pj,
                utilization=0.0,
                model=MODEL_ANALYTIC,
                memory=cost.memory,
                weights_at="-",
                activations_at=ON_CHIP,
            )
        )
    return items
