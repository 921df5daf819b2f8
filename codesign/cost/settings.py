"""Typed settings of the cost step: ZigZag's search options and which of codesign's cost models are on.

Plain dataclasses without ZigZag, so a workload can be read and checked without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass

ZIGZAG_CRITERIA = ("energy", "latency", "EDP")


@dataclass(frozen=True)
class CostOptions:
    """ZigZag search options; part of every cache key."""

    opt: str = "EDP"  # "energy" | "latency" | "EDP": what ZigZag minimises when choosing a mapping
    lpf_limit: int = 6
    nb_spatial_mappings: int = 3

    def __post_init__(self) -> None:
        if self.opt not in ZIGZAG_CRITERIA:
            raise ValueError(f"opt must be energy, latency or EDP, got {self.opt!r}")


RESIDENCY_MODES = ("auto", "offchip")


@dataclass(frozen=True)
class CostModelSettings:
    """codesign's additions to ZigZag's cost model (each can be switched off to reproduce plain ZigZag)."""

    precision_aware_mac: bool = True
    non_compute_ops: bool = True
    # where operands live between layers and inferences (see `codesign.cost.residency`)
    residency: str = "auto"

    def __post_init__(self) -> None:
        if self.residency not in RESIDENCY_MODES:
            raise ValueError(f"residency must be one of {RESIDENCY_MODES}, got {self.residency!r}")

    @classmethod
    def zigzag_only(cls) -> CostModelSettings:
        return cls(precision_aware_mac=False, non_compute_ops=False, residency="offchip")
