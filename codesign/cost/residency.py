"""Where a network's operands live on an accelerator, derived from any ZigZag accelerator file.

ZigZag costs one layer at a time and takes every operand from the outermost memory that serves it, which
in most accelerator files is off chip. A deployed edge network does not work that way: its weights stay
in the on-chip memories when they fit (loaded once, not per inference), and a layer's feature maps stay
in the activation SRAM between layers when they fit. Modes (`cost.residency` in a workload):

- `auto` (the default):
  * weights are resident when all weights placed on a core fit the on-chip memories that serve weights on
    that core; every layer then takes its weights from those memories, and the one-time load of the
    weights from off chip (energy and cycles) is reported separately (`weight_load`);
  * a layer's input and output activations stay in the outermost on-chip memory that serves both when
    they fit it together; otherwise that layer reads and writes them off chip. The network's input image
    and final logits are treated like any other activation (their transfer to and from the host is not
    part of the cost);
- `offchip`: ZigZag's own assumption, every operand from the outermost memory (what `--zigzag-only` uses).

Residency is applied by costing the layer on the accelerator with the operands it keeps on chip removed
from the off-chip memory (what `accelerators/edge_tpu_resident.yaml` does by hand for activations), so
ZigZag searches the mapping for the hierarchy the layer really sees, and the layer-cost cache keys on it
like on any accelerator's contents.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

from codesign.cost.graph import LayerSpec
from codesign.cost.settings import RESIDENCY_MODES
from codesign.hardware.memory import (
    MemoryLevel,
    activation_operand,
    off_chip_level,
    on_chip_only,
    operand_links,
    weight_operand,
)
from codesign.hardware.target import HardwareTarget


@dataclass(frozen=True)
class WeightLoad:
    """Moving the resident weights from off chip into the on-chip weight memories, once (not per inference)."""

    bits: float
    energy_pj: float
    cycles: float


@dataclass(frozen=True)
class ResidencyPlan:
    """Per layer (in the order given): whether its weights and its activations stay on chip."""

    weights_on_chip: tuple[bool, ...]
    activations_on_chip: tuple[bool, ...]
    weight_load: WeightLoad | None  # None: no core keeps its weights on chip


def plan_residency(
    layers: list[LayerSpec],
    target: HardwareTarget,
    mode: str,
    core_of: Callable[[str], int] = lambda segment: 0,
) -> ResidencyPlan:
    """Where each layer's operands live (`core_of`: the core of a layer's segment, for multi-core targets)."""
    if mode not in RESIDENCY_MODES:
        raise ValueError(f"residency must be one of {RESIDENCY_MODES}, got {mode!r}")
    if mode == "offchip" or not layers:
        return ResidencyPlan((False,) * len(layers), (False,) * len(layers), None)
    weight_memories = on_chip_only(target, weight_operand(target))
    capacity = sum(m.size_bits for m in weight_memories)
    bits_per_core: dict[int, float] = {}
    for layer in layers:
        core = core_of(layer.segment)
        bits_per_core[core] = bits_per_core.get(core, 0.0) + layer.weight_elements * layer.weight_bits
    resident_cores = {core for core, bits in bits_per_core.items() if weight_memories and bits <= capacity}
    weights = tuple(core_of(layer.segment) in resident_cores for layer in layers)

    outputs = operand_links(target).get("O", "O")
    shared = [m for m in on_chip_only(target, activation_operand(target)) if outputs in m.operands]
    buffer = shared[-1] if shared else None
    activations = tuple(
        buffer is not None
        and layer.input_elements * layer.act_bits + layer.output_elements * layer.output_bits
        <= buffer.size_bits
        for layer in layers
    )
    resident_bits = sum(bits for core, bits in bits_per_core.items() if core in resident_cores)
    load = _weight_load(target, weight_memories[-1], resident_bits) if resident_cores else None
    return ResidencyPlan(weights, activations, load)


def _weight_load(target: HardwareTarget, memory: MemoryLevel, bits: float) -> WeightLoad:
    outer = off_chip_level(target)
    energy = bits * (outer.read_pj_per_bit + memory.write_pj_per_bit)
    bandwidth = min(outer.read_bits_per_cycle, memory.write_bits_per_cycle) or 1.0
    return WeightLoad(bits=bits, energy_pj=energy, cycles=float(math.ceil(bits / bandwidth)))


def resident_target(target: HardwareTarget, weights: bool, activations: bool) -> HardwareTarget:
    """The accelerator as a layer with these operands on chip sees it: those operands removed from the
    off-chip memory (and the memory itself when it serves nothing else)."""
    if not weights and not activations:
        return target
    dropped = set()
    if weights:
        dropped.add(weight_operand(target))
    if activations:
        dropped |= {activation_operand(target), operand_links(target).get("O", "O")}
    return _pruned(target, frozenset(dropped))


@lru_cache(maxsize=64)
def _pruned(target: HardwareTarget, dropped: frozenset[str]) -> HardwareTarget:
    data = copy.deepcopy(target.accelerator_data)
    outer = off_chip_level(target).name
    memory = data["memories"][outer]
    kept = [op for op in memory["operands"] if op not in dropped]
    if not kept:
        del data["memories"][outer]
    else:
        memory["operands"] = kept
        for port in memory["ports"]:
            port["allocation"] = [a for a in port["allocation"] if a.split(",")[0].strip() not in dropped]
    digest = hashlib.sha256(
        (target.digest + json.dumps(sorted(dropped)) + json.dumps(data, sort_keys=True, default=str)).encode()
    ).hexdigest()
    names = "+".join(sorted(dropped))
    return replace(target, name=f"{target.name}[{names} on chip]", digest=digest, accelerator_data=data)
