"""The cost step's records: one layer's ZigZag result, one operator's cost in the network, one exit's cost,
and the expected cost under exit fractions. Plain dataclasses, shared by every later step."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OFF_CHIP = "off-chip"  # residency label of an operand served by the hierarchy's outermost memory
ON_CHIP = "on-chip"


@dataclass(frozen=True)
class MemoryEnergy:
    """Energy one memory level spends on one operand of a layer, by direction (ZigZag's four-way data
    movement folded into reads and writes)."""

    level: str  # memory name in the accelerator file, e.g. sram_2MB
    operand: str  # layer operand: W (weights), I (input activations), O (outputs / partial sums)
    read_pj: float
    write_pj: float


@dataclass(frozen=True)
class LatencyParts:
    """A layer's latency split as ZigZag accounts it; the parts sum to the layer's latency."""

    ideal_cycles: float  # MACs / peak MACs per cycle
    spatial_stall_cycles: float  # the array is not fully used by the spatial mapping
    temporal_stall_cycles: float  # memories cannot keep up with the computation
    onloading_cycles: float  # first data in before computing starts
    offloading_cycles: float  # last results out after computing ends


@dataclass(frozen=True)
class LayerMapping:
    """How ZigZag mapped a layer: what an architect opens a cost tool for."""

    spatial: str  # the loops unrolled over the array, e.g. "K 8, C 8, OY 4, OX 4"
    temporal: str  # the temporal loops innermost first, each with the memory holding O, W, I at that loop
    accesses: tuple[tuple[str, str, float, float], ...]  # (level, operand, word reads, word writes)
    text: str  # ZigZag's own `print_mapping` of the layer

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "accesses": [list(a) for a in self.accesses]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LayerMapping:
        return cls(data["spatial"], data["temporal"], tuple(tuple(a) for a in data["accesses"]), data["text"])


@dataclass(frozen=True)
class LayerCost:
    energy_pj: float
    latency_cycles: float
    mac_energy_pj: float
    memory_energy_pj: float
    ideal_cycles: float
    utilization: float  # MAC utilisation including data on/off-loading (ZigZag's mac_utilization1)
    memory: tuple[MemoryEnergy, ...] = ()  # memory_energy_pj by level x operand x direction
    latency_parts: LatencyParts | None = None
    mapping: LayerMapping | None = None  # None: cached before mappings were kept

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def detail_json(self) -> dict[str, Any]:
        """The breakdowns, as the layer-cost cache keeps them."""
        return {
            "memory": [[m.level, m.operand, m.read_pj, m.write_pj] for m in self.memory],
            "latency": asdict(self.latency_parts) if self.latency_parts else None,
            "mapping": self.mapping.to_json() if self.mapping else None,
        }

    @classmethod
    def from_cache(cls, values: list[float], detail: dict[str, Any]) -> LayerCost:
        latency = detail.get("latency")
        return cls(
            *values,
            memory=tuple(MemoryEnergy(*entry) for entry in detail.get("memory", [])),
            latency_parts=LatencyParts(**latency) if latency else None,
            mapping=LayerMapping.from_json(detail["mapping"]) if detail.get("mapping") else None,
        )


@dataclass(frozen=True)
class ItemCost:
    """Cost of one operator of the network, with what it is and where it sits."""

    name: str
    op_type: str
    segment: str
    macs: int
    weight_bits: int
    act_bits: int
    output_bits: int
    output_elements: int
    weight_elements: int
    energy_pj: float
    latency_cycles: float
    mac_energy_pj: float
    memory_energy_pj: float
    utilization: float
    model: str
    memory: tuple[MemoryEnergy, ...] = ()
    latency_parts: LatencyParts | None = None
    # where the layer's weights and activations live between inferences / layers (see `cost.residency`)
    weights_at: str = OFF_CHIP
    activations_at: str = OFF_CHIP
    weight_bytes_on_chip: float = 0.0  # kept in the on-chip weight memory (loaded once)
    weight_bytes_streamed: float = 0.0  # read from off chip every time the layer runs
    mapping: LayerMapping | None = None  # how ZigZag mapped it (compute layers)


@dataclass(frozen=True)
class ExitCost:
    stage: int  # the backbone stage this exit follows
    energy_pj: float
    latency_cycles: float
    macs: int
    transfer_energy_pj: float = 0.0
    # energy_pj by where it is spent: each memory level, "MAC", "interconnect" (empty in older run stores)
    energy_by_part: dict[str, float] = field(default_factory=dict)
    head_energy_pj: float = 0.0  # this exit's own head (0 for an exit without one, and in older run stores)
    # memory energy by "level/operand" (operand W, I or O): roles and operands derive from it (empty in older stores)
    memory_by_operand: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ExpectedCost:
    energy_pj: float
    latency_cycles: float
    worst_latency_cycles: float
    macs: float
    # energy spent in early-exit heads whose inputs did not leave there (Zniber et al.'s exit overhead)
    exit_overhead_pj: float = 0.0
