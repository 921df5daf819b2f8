"""Energy by memory role and by operand: columns that mean the same on every accelerator, so that tables of
different accelerators join (the memory names, which differ per file, stay in breakdown.csv)."""

from __future__ import annotations

from codesign.hardware.memory import ARRAY_CELLS, BUFFER, OFF_CHIP, REGISTER_FILE, memory_roles
from codesign.hardware.target import HardwareTarget

OPERANDS = ("W", "I", "O")  # weights (or a second activation operand), input activations, outputs
ROLE_COLUMNS = (
    f"energy_{REGISTER_FILE}_pj",
    f"energy_{ARRAY_CELLS}_pj",
    *(f"energy_{BUFFER}_{operand}_pj" for operand in OPERANDS),
    f"energy_{OFF_CHIP}_pj",
    *(f"energy_{operand}_pj" for operand in OPERANDS),
)


def role_energies(memory_by_operand: dict[str, float], target: HardwareTarget) -> dict[str, float]:
    """`memory_by_operand` ("level/operand" -> pJ) as ROLE_COLUMNS: by role (on-chip buffers per operand)
    and, separately, by operand over every level."""
    roles = memory_roles(target)
    values = dict.fromkeys(ROLE_COLUMNS, 0.0)
    for where, energy in memory_by_operand.items():
        level, operand = where.rsplit("/", 1)
        role = roles.get(level, BUFFER)
        column = f"energy_{BUFFER}_{operand}_pj" if role == BUFFER else f"energy_{role}_pj"
        if column in values:
            values[column] += energy
        if f"energy_{operand}_pj" in values:
            values[f"energy_{operand}_pj"] += energy
    return values
