"""Questions about an accelerator's memory hierarchy: levels, which operands they hold, on-chip capacity,
and the key figures `codesign accelerators` lists."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from codesign.hardware.area import chip_area
from codesign.hardware.target import HardwareTarget

REGISTER_FILE, BUFFER, OFF_CHIP, ARRAY_CELLS = "register_file", "buffer", "off_chip", "array_cells"
ROLES = (REGISTER_FILE, ARRAY_CELLS, BUFFER, OFF_CHIP)  # what a memory is for, the same on every accelerator


@dataclass(frozen=True)
class MemoryLevel:
    name: str
    size_bits: int
    operands: tuple[str, ...]
    read_pj_per_bit: float
    write_pj_per_bit: float
    read_bits_per_cycle: float
    write_bits_per_cycle: float


def memory_levels(target: HardwareTarget) -> list[MemoryLevel]:
    levels = []
    for name, mem in target.accelerator_data["memories"].items():
        read_bw = max(
            (p.get("bandwidth_max", 0) for p in mem["ports"] if p["type"] in ("read", "read_write")),
            default=0,
        )
        write_bw = max(
            (p.get("bandwidth_max", 0) for p in mem["ports"] if p["type"] in ("write", "read_write")),
            default=0,
        )
        levels.append(
            MemoryLevel(
                name=name,
                size_bits=int(mem["size"]),
                operands=tuple(mem["operands"]),
                read_pj_per_bit=float(mem["r_cost"]) / read_bw if read_bw else 0.0,
                write_pj_per_bit=float(mem["w_cost"]) / write_bw if write_bw else 0.0,
                read_bits_per_cycle=float(read_bw),
                write_bits_per_cycle=float(write_bw),
            )
        )
    return levels


def operand_links(target: HardwareTarget) -> dict[str, str]:
    """Layer operand -> memory operand, from the mapping's default entry (e.g. W -> I2, I -> I1)."""
    for entry in target.mapping_data:
        if entry.get("name") == "default":
            return {str(k): str(v) for k, v in entry.get("memory_operand_links", {}).items()}
    return {}


def activation_operand(target: HardwareTarget) -> str:
    """The memory operand that holds input activations."""
    return operand_links(target).get("I", "I1")


def off_chip_level(target: HardwareTarget) -> MemoryLevel:
    """The hierarchy's outermost memory: its largest."""
    return max(memory_levels(target), key=lambda m: m.size_bits)


def on_chip_only(target: HardwareTarget, operand: str) -> list[MemoryLevel]:
    """Memories serving `operand`, smallest first, without the off-chip level (possibly none)."""
    levels = memory_levels(target)
    off_chip = max(levels, key=lambda m: m.size_bits)
    return sorted(
        (m for m in levels if operand in m.operands and m is not off_chip), key=lambda m: m.size_bits
    )


def on_chip_levels(target: HardwareTarget, operand: str) -> list[MemoryLevel]:
    """Memories serving `operand`, smallest first, without the off-chip level: the hierarchy's largest
    memory (an operand it does not serve, e.g. activations kept on chip, keeps all of its levels)."""
    return on_chip_only(target, operand) or sorted(
        (m for m in memory_levels(target) if operand in m.operands), key=lambda m: m.size_bits
    )


def weight_operand(target: HardwareTarget) -> str:
    """The memory operand that holds weights."""
    return operand_links(target).get("W", "I2")


def on_chip_weight_bytes(target: HardwareTarget, cores: int | None = None) -> float:
    """On-chip memory that can keep weights between inferences on `cores` cores (default: all of them): each
    core's outermost on-chip memory serving weights (the inner ones hold copies of its tiles), 0 when only
    the off-chip memory serves weights. A memory shared with activations counts fully."""
    levels = on_chip_only(target, weight_operand(target))
    per_core = levels[-1].size_bits / 8 if levels else 0.0
    return (target.cores if cores is None else cores) * per_core


def activation_buffer(target: HardwareTarget) -> MemoryLevel:
    """The largest on-chip memory that holds activations: where non-compute operators read and write."""
    return on_chip_levels(target, activation_operand(target))[-1]


def key_figures(target: HardwareTarget) -> dict[str, Any]:
    """What `codesign accelerators` lists for each library entry."""
    array = target.accelerator_data["operational_array"]
    sizes = [int(s) for s in array["sizes"]]
    links = operand_links(target)
    on_chip = {
        layer_op: sum(m.size_bits for m in on_chip_only(target, mem_op)) / 8 / 1024
        for layer_op, mem_op in links.items()
    }
    return {
        "name": target.name,
        "array": "x".join(str(s) for s in sizes),
        "peak_macs_per_cycle": math.prod(sizes) * target.cores,
        "cores": target.cores,
        "on_chip_kib_W": round(on_chip.get("W", 0.0), 1),
        "on_chip_kib_I": round(on_chip.get("I", 0.0), 1),
        "on_chip_kib_O": round(on_chip.get("O", 0.0), 1),
        "mac_energy_pj": float(array["unit_energy"])
        if "unit_energy" in array
        else None,  # IMC: ZigZag's model
        "chip_area": area.total if (area := chip_area(target)) is not None else None,
        "clock_mhz": target.clock_hz / 1e6,
        "precision_scalable": " ".join(f"<={b}b:x{f:g}" for b, f in target.precision_scalable) or "-",
        "description": target.description,
    }


@lru_cache(maxsize=64)
def memory_roles(target: HardwareTarget) -> dict[str, str]:
    """Memory name -> its role: the off-chip memory (the hierarchy's largest), the cells of an in-memory-computing
    array (its innermost weight level), a register file (the innermost on-chip level of an operand that has
    more than one on-chip level), or an on-chip buffer."""
    levels = memory_levels(target)
    outer = off_chip_level(target).name
    roles = {level.name: BUFFER for level in levels}
    roles[outer] = OFF_CHIP
    for operand in {op for level in levels for op in level.operands}:
        on_chip = sorted(
            (level for level in levels if operand in level.operands and level.name != outer),
            key=lambda level: level.size_bits,
        )
        if len(on_chip) > 1:
            roles[on_chip[0].name] = REGISTER_FILE
    if target.accelerator_data["operational_array"].get("is_imc"):
        held = weight_operand(target)
        weights = sorted(
            (level for level in levels if held in level.operands), key=lambda level: level.size_bits
        )
        if weights:
            roles[weights[0].name] = ARRAY_CELLS
    return roles
