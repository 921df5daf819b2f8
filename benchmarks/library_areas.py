"""Chip area for every library accelerator: each on-chip memory's area from CACTI 7 (the query ZigZag's own
`auto_cost_extraction` makes, 22 nm), the MAC array's from a cited per-MAC area; `--write` records them in the
accelerator files (`area:` of each memory, `unit_area:` of the array), where `codesign.hardware.area` reads them.

Per MAC: Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm: 8-bit multiply
282 um^2, 16-bit add 67 um^2; an 8x8-bit MAC with a 16-bit accumulator (every library array's) is 349 um^2,
scaled to CACTI's 22 nm by the square of the feature size: 349 x (22/45)^2 = 83.4 um^2 = 8.34e-5 mm^2.
Register files (every library memory below 1 KiB: the per-MAC and per-lane registers; CACTI's smallest array is
64 bytes) are modelled as ZigZag models a register file (`mem_type: rf`): an SRAM 128 times its size. Off-chip memories (`dram`, `ext_mem`: the top level) are not on the chip: area 0.

    .venv/bin/python benchmarks/library_areas.py            # print the figures
    .venv/bin/python benchmarks/library_areas.py --write    # and record them in accelerators/*.yaml
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from codesign.hardware.area import chip_area
from codesign.hardware.cacti import CactiQuery, cacti_costs
from codesign.hardware.target import accelerator_library, library_names, load_hardware

MAC_AREA_MM2 = round(349e-6 * (22 / 45) ** 2, 7)  # 8-bit multiply + 16-bit add (Horowitz 2014), at 22 nm
REGISTER_FILE_BYTES = 1024  # below this, a memory is a register file (ZigZag's `rf` model)


def memory_area(memory: dict) -> float:
    query = CactiQuery.for_memory(memory)
    if query.size_bytes < REGISTER_FILE_BYTES:
        query = CactiQuery.for_memory({**memory, "mem_type": "rf"})
    return round(cacti_costs(query).area_mm2, 7)


def areas(name: str) -> tuple[dict[str, float], float]:
    """(memory name -> area in mm^2, per-MAC area) for a library accelerator; the last memory is off-chip."""
    target = load_hardware(name)
    memories = target.accelerator_data["memories"]
    top = list(memories)[-1]  # every library file lists its off-chip memory last
    return {m: 0.0 if m == top else memory_area(memories[m]) for m in memories}, MAC_AREA_MM2


def record(path: Path, memory_areas: dict[str, float], mac_area: float) -> None:
    """The file with each memory's `area:` and the array's `unit_area:` replaced in place (comments kept)."""
    text = path.read_text()
    for memory, area in memory_areas.items():
        block = re.search(rf"(?m)^  {re.escape(memory)}:\n((?:    .*\n|\s*\n)+)", text)
        assert block, (path, memory)
        body = re.sub(
            r"(?m)^    area: .*$",
            f"    area: {area:g}  # mm^2, {'off chip' if area == 0 else 'CACTI 7, 22 nm'}",
            block.group(1),
            count=1,
        )
        text = text[: block.start(1)] + body + text[block.end(1) :]
    text = re.sub(
        r"(?m)^  unit_area: .*$",
        f"  unit_area: {mac_area:g}  # mm^2 per MAC: Horowitz ISSCC 2014 (45 nm) scaled to 22 nm",
        text,
        count=1,
    )
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record the areas in the library's files")
    args = parser.parse_args()
    for name in library_names():
        memory_areas, mac_area = areas(name)
        if args.write:
            record(accelerator_library() / f"{name}.yaml", memory_areas, mac_area)
        shown = ", ".join(f"{m} {a:.4g}" for m, a in memory_areas.items())
        total = chip_area(load_hardware(name)) if args.write else None
        print(f"{name}: {shown}; per MAC {mac_area:.3g} mm^2" + (f"; {total.describe()}" if total else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
