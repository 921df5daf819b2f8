"""Where a network's operands live on an accelerator, derived from any ZigZag accelerator file.

ZigZag costs one layer at a time and takes every operand from the outermost memory that serves it, which
in most accelerator files is off chip. A deployed edge network does not work that way: a compiler keeps as
many of its weights in the on-chip weight memory as fit (loaded once, not per inference) and streams only
the rest from off chip on every inference (the Edge TPU compiler reports both sizes), and a layer's feature
maps stay in the activation SRAM when they fit. Modes (`cost.residency` in a workload):

- `auto` (the default):
  * weights, per layer and per exit head: each core's outermost on-chip weight memory keeps the set of
    weight tensors that saves the most off-chip traffic per inference, a tensor's value being its bits
    times the probability that its layer runs (from the exit fractions: a head few inputs reach, or the
    layers after an exit most inputs take, are the first to stream). The set is found exactly (a 0/1
    knapsack over whole tensors; memories above 64 KiB in 1/65536ths of their size, tensors rounded up).
    Without exit fractions (a network costed before its exit statistics) every layer counts as running,
    which keeps the most weight bytes on chip; the plan says which was used. Every other tensor is read
    from off chip whenever its layer runs, costed by ZigZag with the hierarchy that layer really sees. The
    one-time load of the kept weights (energy at the operating point, and cycles) is reported apart
    (`weight_load`);
  * activations by liveness: while a layer runs, every result still needed later (a skip connection held
    across layers, an exit head's input that the next stage also reads) is live beside the layer's own
    input and output; the layer keeps its activations in the outermost on-chip memory that serves both
    inputs and outputs when everything live then fits it, else it reads and writes them off chip. The
    network's input image and its logits count like any other activation (their transfer to and from the
    host is not part of the cost). A memory that serves weights and activations gives the activations
    what they need first;
- `offchip`: ZigZag's own assumption, every operand from the outermost memory (what `--zigzag-only` uses).

In-memory-computing arrays keep their weights in the array's cells and ZigZag's IMC path decides where
every operand lives (`cost.imc`): no plan is made for them, and the plan says so.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from codesign.cost.exits import segment_index
from codesign.cost.imc import is_imc
from codesign.cost.layer_specs import NETWORK_INPUT, LayerSpec, OperatorSpec
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

IMC = "imc"  # the plan's mode on an in-memory-computing array (no plan: ZigZag's IMC path decides)
EXACT_UNITS = 65536  # knapsack resolution: bytes up to 64 KiB of memory, 1/65536th of it above
ORDER_UNKNOWN = "exit fractions unknown: every layer counted as running (most weight bytes on chip)"
ORDER_FRACTIONS = "by expected off-chip traffic saved, from the exit fractions"


@dataclass(frozen=True)
class WeightLoad:
    """Moving the weights kept on chip from off chip into the on-chip weight memories, once (not per
    inference), at the accelerator's operating point."""

    bits: float
    energy_pj: float
    cycles: float


@dataclass(frozen=True)
class CoreWeights:
    """One core's weights: what its on-chip weight memory keeps and what streams whenever its layer runs."""

    core: int
    memory: str | None  # the on-chip memory that keeps weights (None: the core has none)
    capacity_bytes: float  # of that memory, less what activations sharing it need
    on_chip_bytes: float
    streamed_bytes: float


@dataclass(frozen=True)
class ResidencyPlan:
    """Per layer (in the order given): whether its weights and its activations stay on chip; per core: bytes
    kept and streamed; and which order chose the weights."""

    mode: str  # "auto", "offchip", or IMC
    weights_on_chip: tuple[bool, ...]
    activations_on_chip: tuple[bool, ...]
    weight_load: WeightLoad | None  # None: no weights are kept on chip
    cores: tuple[CoreWeights, ...] = ()
    order: str = ORDER_UNKNOWN

    @property
    def on_chip_bytes(self) -> float:
        return sum(core.on_chip_bytes for core in self.cores)

    @property
    def streamed_bytes(self) -> float:
        """Weight bytes read from off chip whenever their layer runs."""
        return sum(core.streamed_bytes for core in self.cores)

    def describe(self) -> str:
        """One line for a cost report's notes."""
        if self.mode == IMC:
            return (
                "in-memory computing: weights stay in the array's cells and ZigZag's IMC path decides where every "
                "operand lives (residency does not apply)"
            )
        if self.mode == "offchip":
            return "residency offchip: every operand from the outermost memory, every inference (ZigZag's assumption)"
        cores = "; ".join(
            f"core {c.core}: {c.on_chip_bytes / 1024:.1f} KiB of weights kept in "
            f"{c.memory or 'no on-chip weight memory'} ({c.capacity_bytes / 1024:.1f} KiB), "
            f"{c.streamed_bytes / 1024:.1f} KiB streamed whenever their layer runs"
            for c in self.cores
        )
        load = ""
        if self.weight_load is not None:
            load = (
                f"; one-time weight load {self.weight_load.energy_pj / 1e3:.1f} nJ, "
                f"{self.weight_load.cycles:.0f} cycles (not per inference)"
            )
        return (
            f"residency auto: {cores} (chosen {self.order}); activations on chip for "
            f"{sum(self.activations_on_chip)} of {len(self.activations_on_chip)} layers (all that is live at "
            f"once must fit){load}"
        )


def execution_order(items: Sequence[LayerSpec | OperatorSpec]) -> list[int]:
    """Indices of `items` in the order they run: stage 0, head 0, stage 1, head 1, ...; within a segment,
    graph order."""

    def key(index: int) -> tuple[int, bool, int, int]:
        item = items[index]
        kind, number = segment_index(item.segment)
        return (number, kind != "stage", item.position, index)

    return sorted(range(len(items)), key=key)


def run_probabilities(exit_stages: Sequence[int], fractions: Sequence[float]) -> dict[str, float]:
    """Probability that each segment runs when `fractions[k]` of the inputs leave at the exit after stage
    `exit_stages[k]`: a stage runs for the inputs that have not left before it, its exit head for the same."""
    remaining, probability = 1.0, {}
    left_after = dict(zip(exit_stages, fractions, strict=True))
    for stage in range(max(exit_stages) + 1):
        probability[f"stage{stage}"] = probability[f"head{stage}"] = max(remaining, 0.0)
        remaining -= left_after.get(stage, 0.0)
    return probability


def plan_residency(
    layers: list[LayerSpec],
    target: HardwareTarget,
    mode: str,
    core_of: Callable[[str], int] = lambda segment: 0,
    operators: Sequence[OperatorSpec] = (),
    runs: dict[str, float] | None = None,
) -> ResidencyPlan:
    """Where each layer's operands live. `core_of`: the core of a layer's segment (multi-core targets);
    `operators`: the network's pooling and Add operators, whose results are live activations too; `runs`:
    the probability that each segment runs (`run_probabilities`; None: not known yet, every layer runs)."""
    if mode not in RESIDENCY_MODES:
        raise ValueError(f"residency must be one of {RESIDENCY_MODES}, got {mode!r}")
    nothing = ((False,) * len(layers), (False,) * len(layers))
    if is_imc(target):
        return ResidencyPlan(IMC, *nothing, None)
    if mode == "offchip" or not layers:
        return ResidencyPlan("offchip", *nothing, None)
    buffer = _activation_buffer(target)
    live = _live_bits(layers, operators, core_of)
    activations = tuple(buffer is not None and bits <= buffer.size_bits for bits in live)
    weight_memories = on_chip_only(target, weight_operand(target))
    memory = weight_memories[-1] if weight_memories else None
    capacity = float(memory.size_bits) if memory is not None else 0.0
    if memory is not None and buffer is not None and memory.name == buffer.name:
        # one memory for weights and activations: what the activations kept there need comes first
        capacity -= max((bits for bits, kept in zip(live, activations, strict=True) if kept), default=0.0)
    capacity = max(capacity, 0.0)
    kept = [False] * len(layers)
    cores = []
    for core in sorted({core_of(layer.segment) for layer in layers}):
        indices = [i for i in execution_order(layers) if core_of(layers[i].segment) == core]
        bits = [float(layers[i].weight_elements * layers[i].weight_bits) for i in indices]
        values = [b * (runs or {}).get(layers[i].segment, 1.0) for i, b in zip(indices, bits, strict=True)]
        for index, keep in zip(indices, _knapsack(bits, values, capacity), strict=True):
            kept[index] = keep
        on_chip = sum(b for i, b in zip(indices, bits, strict=True) if kept[i])
        cores.append(
            CoreWeights(
                core, memory.name if memory else None, capacity / 8, on_chip / 8, (sum(bits) - on_chip) / 8
            )
        )
    weights = tuple(k and layers[i].weight_elements > 0 for i, k in enumerate(kept))
    resident_bits = sum(c.on_chip_bytes for c in cores) * 8
    load = _weight_load(target, memory, resident_bits) if memory is not None and resident_bits > 0 else None
    order = ORDER_UNKNOWN if runs is None else ORDER_FRACTIONS
    return ResidencyPlan("auto", weights, activations, load, tuple(cores), order)


def _knapsack(bits: list[float], values: list[float], capacity: float) -> list[bool]:
    """Which tensors to keep: the most value within `capacity` bits (exact 0/1 knapsack; sizes in whole
    bytes up to 64 KiB of capacity, in 1/EXACT_UNITS of it above, rounded up so the kept set always fits).
    Ties keep the earlier tensor."""
    if sum(bits) <= capacity:
        return [True] * len(bits)
    unit = max(8.0, capacity / EXACT_UNITS)
    slots = int(capacity // unit)
    sizes = [math.ceil(b / unit) for b in bits]
    best = np.zeros(slots + 1)
    chosen = np.zeros((len(bits), slots + 1), dtype=bool)
    for index in range(len(bits) - 1, -1, -1):  # backwards, so that ties keep the earlier tensor
        size, value = sizes[index], values[index]
        if size > slots:
            continue
        candidate = np.full(slots + 1, -np.inf)
        candidate[size:] = best[: slots + 1 - size] + value
        take = candidate >= best if value > 0 else candidate > best
        chosen[index] = take
        best = np.where(take, candidate, best)
    keep, room = [False] * len(bits), slots
    for index in range(len(bits)):
        if chosen[index, room]:
            keep[index] = True
            room -= sizes[index]
    return keep


def _activation_buffer(target: HardwareTarget) -> MemoryLevel | None:
    """The outermost on-chip memory that holds both input and output activations (None: there is none)."""
    outputs = operand_links(target).get("O", "O")
    shared = [m for m in on_chip_only(target, activation_operand(target)) if outputs in m.operands]
    return shared[-1] if shared else None


def _live_bits(
    layers: Sequence[LayerSpec], operators: Sequence[OperatorSpec], core_of: Callable[[str], int]
) -> list[float]:
    """Per layer: the activation bits live on its core while it runs (its inputs and output, and every
    result produced before it that an item after it still reads)."""
    items: list[LayerSpec | OperatorSpec] = [*layers, *operators]
    order = execution_order(items)
    step = {index: position for position, index in enumerate(order)}
    by_name = {item.name: index for index, item in enumerate(items)}
    produced: dict[str, float] = {}  # value -> bits
    made_at: dict[str, int] = {}
    last_read: dict[str, int] = {}
    cores: dict[str, set[int]] = {}
    for index, item in enumerate(items):
        core = core_of(item.segment)
        produced[item.name] = float(item.output_elements * item.output_bits)
        made_at[item.name] = step[index]
        last_read.setdefault(item.name, step[index])
        cores.setdefault(item.name, set()).add(core)
        reads = item.reads or ()
        for value in reads:
            if value != NETWORK_INPUT and value not in by_name:
                continue  # produced by a head that is switched off
            if value == NETWORK_INPUT:
                produced[value] = max(produced.get(value, 0.0), float(_input_bits(item)))
                made_at[value] = -1
            last_read[value] = max(last_read.get(value, -1), step[index])
            cores.setdefault(value, set()).add(core)
    live = []
    for index, layer in enumerate(layers):
        now, core = step[index], core_of(layer.segment)
        own_input = 0.0 if layer.reads else float(_input_bits(layer))  # a layer without graph edges
        live.append(
            own_input
            + sum(
                bits
                for value, bits in produced.items()
                if made_at[value] <= now <= last_read[value] and core in cores[value]
            )
        )
    return live


def _input_bits(item: LayerSpec | OperatorSpec) -> int:
    return item.input_elements * item.act_bits


def _weight_load(target: HardwareTarget, memory: MemoryLevel, bits: float) -> WeightLoad:
    outer = off_chip_level(target)
    energy = bits * (outer.read_pj_per_bit + memory.write_pj_per_bit) * target.energy_scale
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
