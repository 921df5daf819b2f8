"""Per-exit and expected costs of an early-exit network from its per-layer costs.

Taking exit k costs every backbone stage up to the one it follows, plus every active exit head
evaluated on the way (those that did not fire, and exit k's own). Expected cost weights each exit's
cost by the fraction of inputs that leave there. Single core, layers run one after another.
"""

from __future__ import annotations

from dataclasses import dataclass

from codesign.layers import LayerSpec
from codesign.zigzag_runner import LayerCost


@dataclass(frozen=True)
class ExitCost:
    stage: int  # the backbone stage this exit follows
    energy_pj: float
    latency_cycles: float
    macs: int


@dataclass(frozen=True)
class ExpectedCost:
    energy_pj: float
    latency_cycles: float
    worst_latency_cycles: float
    macs: float


def segment_index(segment: str) -> tuple[str, int]:
    if segment == "backbone":
        return "stage", 0
    for kind in ("stage", "head"):
        if segment.startswith(kind) and segment[len(kind) :].isdigit():
            return kind, int(segment[len(kind) :])
    raise ValueError(f"unknown segment {segment!r}")


def per_exit_costs(
    layers: list[LayerSpec], costs: list[LayerCost], exit_stages: tuple[int, ...]
) -> list[ExitCost]:
    """Cumulative cost of reaching and taking each active exit (earliest first, final last)."""
    stage_energy: dict[int, float] = {}
    stage_latency: dict[int, float] = {}
    stage_macs: dict[int, int] = {}
    head_energy: dict[int, float] = {}
    head_latency: dict[int, float] = {}
    head_macs: dict[int, int] = {}
    for layer, cost in zip(layers, costs, strict=True):
        kind, index = segment_index(layer.segment)
        energy, latency, macs = (
            (stage_energy, stage_latency, stage_macs)
            if kind == "stage"
            else (head_energy, head_latency, head_macs)
        )
        energy[index] = energy.get(index, 0.0) + cost.energy_pj
        latency[index] = latency.get(index, 0.0) + cost.latency_cycles
        macs[index] = macs.get(index, 0) + layer.macs
    result = []
    for exit_stage in exit_stages:
        stages = [s for s in stage_energy if s <= exit_stage]
        heads = [h for h in exit_stages if h <= exit_stage and h in head_energy]
        result.append(
            ExitCost(
                stage=exit_stage,
                energy_pj=sum(stage_energy[s] for s in stages) + sum(head_energy[h] for h in heads),
                latency_cycles=sum(stage_latency[s] for s in stages) + sum(head_latency[h] for h in heads),
                macs=sum(stage_macs[s] for s in stages) + sum(head_macs[h] for h in heads),
            )
        )
    return result


def expected_cost(exits: list[ExitCost], fractions: tuple[float, ...]) -> ExpectedCost:
    if len(exits) != len(fractions):
        raise ValueError(f"{len(fractions)} exit fractions for {len(exits)} exits")
    return ExpectedCost(
        energy_pj=sum(f * e.energy_pj for f, e in zip(fractions, exits, strict=True)),
        latency_cycles=sum(f * e.latency_cycles for f, e in zip(fractions, exits, strict=True)),
        worst_latency_cycles=max(e.latency_cycles for e, f in zip(exits, fractions, strict=True) if f > 0)
        if any(f > 0 for f in fractions)
        else exits[-1].latency_cycles,
        macs=sum(f * e.macs for f, e in zip(fractions, exits, strict=True)),
    )
