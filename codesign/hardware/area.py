"""Chip area from the accelerator file's own area fields.

Area: each memory's `area` times the copies ZigZag makes of it (one per array position it does not serve),
plus the operational array: `unit_area` times its units for a digital array, ZigZag's own 28 nm model of
the macro (cells, DACs, ADCs, adders) for an in-memory-computing one; times the cores. A file whose
memories all state area 0 (as ZigZag's shipped files and ours do) has no area model: `chip_area` says so
with None rather than showing a sum of zeros.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from codesign.hardware.target import HardwareTarget


@dataclass(frozen=True)
class ChipArea:
    """Area in the file's unit (ZigZag's convention: mm^2), per part of one core, and for the whole chip."""

    total: float
    parts: dict[str, float]  # memory name -> its area x copies; "array" -> the operational array (one core)
    cores: int

    def describe(self) -> str:
        largest = sorted(self.parts.items(), key=lambda item: -item[1])[:3]
        shown = ", ".join(f"{name} {value:.3g}" for name, value in largest)
        per_core = f" ({self.cores} cores)" if self.cores > 1 else ""
        return (
            f"chip area {self.total:.4g}{per_core} in the accelerator file's area unit (mm^2 by ZigZag's "
            f"convention), from its area fields; largest: {shown}"
        )


NO_AREA = "chip area: not modelled (the accelerator file's memories state no area)"


@lru_cache(maxsize=64)
def chip_area(target: HardwareTarget) -> ChipArea | None:
    data = target.accelerator_data
    array = data["operational_array"]
    sizes = dict(zip(array["dimensions"], (int(s) for s in array["sizes"]), strict=True))
    parts: dict[str, float] = {}
    for name, memory in data["memories"].items():
        served = set(memory.get("served_dimensions", []))
        copies = math.prod(size for dim, size in sizes.items() if dim not in served)
        parts[name] = float(memory.get("area", 0) or 0) * copies
    if array.get("is_imc"):
        parts["array"] = float(_zigzag_accelerator(target).operational_array.area)
    elif any(parts.values()):
        parts["array"] = float(array.get("unit_area", 0) or 0) * math.prod(sizes.values())
    if not any(value for name, value in parts.items() if name != "array") and not array.get("is_imc"):
        return None
    return ChipArea(sum(parts.values()) * target.cores, parts, target.cores)


def _zigzag_accelerator(target: HardwareTarget) -> Any:
    from zigzag.parser.accelerator_factory import AcceleratorFactory

    accelerator = AcceleratorFactory(target.accelerator_data).create()
    accelerator.operational_array.get_area()  # fills `.area` from ZigZag's IMC technology model
    return accelerator
