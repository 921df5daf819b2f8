"""One candidate network priced on its accelerator, in the order the prices are made:
residency plan -> layer costs -> per-exit costs (expected costs: `cost.exits.expected_cost`, from the exit
fractions that the exit statistics measure).

A `CandidateCosting` holds everything it needs (the candidate's layers, its accelerator variant, core
allocation, cost engine and settings), so each step is a call on it with the previous step's output,
and nothing calls back into whoever built it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from codesign.cost.engine import CostEngine
from codesign.cost.exits import Allocation, per_exit_costs
from codesign.cost.layer_specs import LayerSpec, OperatorSpec, ParsedNetwork
from codesign.cost.network import network_costs
from codesign.cost.records import ExitCost, ItemCost
from codesign.cost.residency import ResidencyPlan, plan_residency, run_probabilities
from codesign.cost.settings import CostModelSettings
from codesign.hardware.target import HardwareTarget


@dataclass(frozen=True)
class CandidateCosting:
    """A network (an architecture's layers minus its switched-off exit heads) on one accelerator variant."""

    network: ParsedNetwork  # the architecture's layers, every exit head present
    exit_stages: tuple[int, ...]  # active exits, final last
    target: HardwareTarget
    allocation: Allocation | None  # stages and heads on cores; None: one core
    engine: CostEngine
    settings: CostModelSettings

    @cached_property
    def layers(self) -> list[LayerSpec]:
        return candidate_layers(self.network.layers, self.exit_stages)

    @cached_property
    def operators(self) -> list[OperatorSpec]:
        return candidate_layers(self.network.operators, self.exit_stages)

    def residency(self, fractions: tuple[float, ...] | None = None) -> ResidencyPlan:
        """Where weights and activations live and the one-time weight load (`cost.residency`); `fractions`:
        exit fractions that say how often each segment runs (None: not known yet, every layer counts)."""
        runs = run_probabilities(self.exit_stages, fractions) if fractions is not None else None
        core_of = self.allocation.core_of if self.allocation else (lambda segment: 0)
        return plan_residency(
            self.layers, self.target, self.settings.residency, core_of, self.operators, runs
        )

    def layer_costs(self, plan: ResidencyPlan) -> list[ItemCost]:
        """Per-layer and per-operator costs under `plan` (ZigZag through the engine's cache)."""
        return network_costs(
            self.layers,
            self.operators,
            self.engine,
            self.settings,
            self.target,
            self.allocation.core_of if self.allocation else None,
            plan,
            self.network.dataflow,
        )

    def exit_costs(self, items: list[ItemCost]) -> list[ExitCost]:
        """Cost of reaching and taking each active exit, from this network's layer costs."""
        return per_exit_costs(
            items,
            self.exit_stages,
            self.allocation,
            self.target.interconnect,
            self.target.static_pj_per_cycle,
        )

    def with_exits(self, exit_stages: tuple[int, ...]) -> CandidateCosting:
        """The same backbone with only these exits (e.g. the final one: the static counterpart)."""
        return CandidateCosting(
            self.network, exit_stages, self.target, self.allocation, self.engine, self.settings
        )

    def priced(
        self, fractions: tuple[float, ...] | None = None
    ) -> tuple[ResidencyPlan, list[ItemCost], list[ExitCost]]:
        """The three steps in order: residency plan, layer costs, per-exit costs."""
        plan = self.residency(fractions)
        items = self.layer_costs(plan)
        return plan, items, self.exit_costs(items)


Segmented = TypeVar("Segmented")


def candidate_layers(items: list[Segmented], active_exit_stages: tuple[int, ...]) -> list[Segmented]:
    """The architecture's layers (or operators) minus the exit heads that are switched off."""
    heads = {f"head{i}" for i in active_exit_stages}
    return [item for item in items if not item.segment.startswith("head") or item.segment in heads]  # type: ignore[attr-defined]
