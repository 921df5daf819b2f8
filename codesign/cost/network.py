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

from codesign.cost.engine import CostEngine
from codesign.cost.graph import LayerSpec, OperatorSpec
from codesign.cost.records import ItemCost, LayerCost
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
    adjusted = LayerCost(
        energy_pj=raw.energy_pj - raw.mac_energy_pj + mac_energy,
        latency_cycles=latency,
        mac_energy_pj=mac_energy,
        memory_energy_pj=raw.memory_energy_pj,
        ideal_cycles=raw.ideal_cycles / factor,
        utilization=raw.utilization,
    )
    return adjusted, MODEL_PRECISION_SCALABLE if factor > 1 else MODEL_PRECISION


def operator_cost(op: OperatorSpec, target: HardwareTarget) -> LayerCost:
    buffer = activation_buffer(target)
    read_bits = op.input_elements * op.act_bits
    write_bits = op.output_elements * op.output_bits
    memory_energy = read_bits * buffer.read_pj_per_bit + write_bits * buffer.write_pj_per_bit
    unit = float(target.accelerator_data["operational_array"]["unit_energy"])
    model = target.mac_energy
    adder_energy = unit * (1.0 - model.multiplier_share) * (2 * op.act_bits) / sum(model.reference_bits)
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
    )


def network_costs(
    layers: list[LayerSpec],
    operators: list[OperatorSpec],
    engine: CostEngine,
    settings: CostModelSettings | None = None,
    target: HardwareTarget | None = None,
) -> list[ItemCost]:
    """Costs of every compute layer (and, if enabled, every non-compute operator), in the given order."""
    settings = settings or CostModelSettings()
    target = target or engine.target
    items = []
    for layer, raw in zip(layers, engine.layer_costs(layers, target), strict=True):
        cost, model = (raw, MODEL_ZIGZAG)
        if settings.precision_aware_mac:
            cost, model = precision_adjusted(raw, layer, target)
        items.append(
            ItemCost(
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
            )
        )
    if settings.non_compute_ops:
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
                )
            )
    return items
