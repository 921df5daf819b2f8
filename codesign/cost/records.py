"""The cost step's records: one layer's ZigZag result, one operator's cost in the network, one exit's cost,
and the expected cost under exit fractions. Plain dataclasses, shared by every later step."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerCost:
    energy_pj: float
    latency_cycles: float
    mac_energy_pj: float
    memory_energy_pj: float
    ideal_cycles: float
    utilization: float  # MAC utilisation including data on/off-loading (ZigZag's mac_utilization1)

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


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


@dataclass(frozen=True)
class ExitCost:
    stage: int  # the backbone stage this exit follows
    energy_pj: float
    latency_cycles: float
    macs: int
    transfer_energy_pj: float = 0.0


@dataclass(frozen=True)
class ExpectedCost:
    energy_pj: float
    latency_cycles: float
    worst_latency_cycles: float
    macs: float
