"""Memory energy per access and area from CACTI 7, the binary ZigZag ships, for memories whose cost must follow
their size: those a workload searches or overrides the size of, and those whose file asks for
`auto_cost_extraction`.

ZigZag's own route (`zigzag.cacti.cacti_parser.CactiParser`) starts CACTI's helper script with whatever `python`
is first on PATH (so it fails when codesign is started as `.venv/bin/codesign`) and appends every result to a
YAML file inside the installed package. Here the binary runs directly, in a private scratch folder per call (its
technology files linked in), and results are kept in codesign's own cache, `cacti.sqlite` beside the layer
costs (SQLite: safe with several processes). The query is ZigZag's, so the figures are the ones ZigZag's
`auto_cost_extraction` would give: CACTI's dynamic read and write energy of one access of the read port's
width, and its area, at 22 nm unless the memory says otherwise; a register file (`rf`) is modelled, as ZigZag
does, as an SRAM 128 times its size.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from codesign.databases import open_database, writing
from codesign.errors import CodesignError
from codesign.files import user_cache_dir

TECHNOLOGY_UM = 0.022  # ZigZag's default CACTI technology node (22 nm)
CACHE_NAME = "cacti.sqlite"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS memory_costs (query TEXT PRIMARY KEY, read_pj REAL, write_pj REAL, area_mm2 REAL)",
)
_TABLES = {"memory_costs": ("query", "read_pj", "write_pj", "area_mm2")}


@dataclass(frozen=True)
class CactiQuery:
    """What CACTI is asked: ZigZag's parameters for one memory instance."""

    mem_type: str  # "sram" or "dram" (an "rf" is asked as ZigZag asks it: see `for_memory`)
    size_bytes: int
    io_bits: int  # the read port's width: one access
    read_ports: int
    write_ports: int
    read_write_ports: int
    banks: int = 1
    technology_um: float = TECHNOLOGY_UM

    @classmethod
    def for_memory(cls, memory: dict[str, Any]) -> CactiQuery:
        """The query ZigZag's `MemoryInstance` makes for a validated accelerator file's memory entry: the first
        read port's widest access (else the first read-write port's), one read and one write port."""
        ports = memory.get("ports") or []
        widths = [int(p["bandwidth_max"]) for p in ports if p.get("type") == "read"] or [
            int(p["bandwidth_max"]) for p in ports if p.get("type") == "read_write"
        ]
        size_bits, mem_type = int(memory["size"]), str(memory.get("mem_type", "sram"))
        if mem_type == "rf":
            size_bits, mem_type = size_bits * 128, "sram"
        return cls(
            mem_type=mem_type,
            size_bytes=size_bits // 8,
            io_bits=widths[0] if widths else 0,
            read_ports=1,
            write_ports=1,
            read_write_ports=0,
        )

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        return f"{self.size_bytes:,}-byte {self.mem_type} with {self.io_bits}-bit accesses"


@dataclass(frozen=True)
class MemoryCosts:
    read_pj: float  # dynamic energy of one read access of `io_bits`
    write_pj: float
    area_mm2: float


def default_cacti_cache() -> Path:
    """`cacti.sqlite` in codesign's cache folder, beside the default layer-cost cache."""
    return user_cache_dir() / CACHE_NAME


def cacti_costs(query: CactiQuery, cache_path: Path | None = None) -> MemoryCosts:
    """CACTI's figures for `query`, from the cache or computed now (and kept); a query CACTI cannot serve is a
    `CodesignError` saying why."""
    path = cache_path or default_cacti_cache()
    connection = open_database(
        path, _SCHEMA, _TABLES, "codesign's CACTI memory-cost cache", "delete it: it is recomputed"
    )
    try:
        row = connection.execute(
            "SELECT read_pj, write_pj, area_mm2 FROM memory_costs WHERE query = ?", (query.key(),)
        ).fetchone()
        if row is not None:
            return MemoryCosts(*row)
        costs = _run_cacti(query)
        with writing(path):
            connection.execute(
                "INSERT OR IGNORE INTO memory_costs VALUES (?, ?, ?, ?)",
                (query.key(), costs.read_pj, costs.write_pj, costs.area_mm2),
            )
        return costs
    finally:
        connection.close()


def _cacti_folder() -> Path:
    import zigzag.cacti.cacti_master as master  # a folder of C++ sources, the built binary and its data

    return Path(next(iter(master.__path__)))


def _run_cacti(query: CactiQuery) -> MemoryCosts:
    from zigzag.cacti.cacti_master.cacti_config_creator import CactiConfig

    if query.io_bits <= 0 or query.size_bytes <= 0:
        raise CodesignError(f"CACTI cannot model a {query.describe()}: size and port width must be positive")
    values = {
        "mem_type": '"ram"' if query.mem_type == "sram" else '"main memory"',
        "cache_size": query.size_bytes,
        "IO_bus_width": query.io_bits,
        "ex_rd_port": query.read_ports,
        "ex_wr_port": query.write_ports,
        "rd_wr_port": query.read_write_ports,
        "bank_count": query.banks,
        "technology": query.technology_um,
        "line_size": query.io_bits,  # as ZigZag's cacti_top: one line per access
    }
    config = CactiConfig()
    lines = [
        option["string"] + str(values.get(name, option["default"])) + "\n"
        for name, option in config.config_options.items()
    ]
    master = _cacti_folder()
    with tempfile.TemporaryDirectory(prefix="codesign-cacti-") as scratch:
        folder = Path(scratch)
        for entry in master.iterdir():  # CACTI reads its technology files from its working folder
            if entry.name not in ("self_gen", "__pycache__") and entry.suffix != ".yaml":
                (folder / entry.name).symlink_to(entry)
        (folder / "self_gen").mkdir()
        config.write_config(lines, str(folder / "self_gen" / "cache.cfg"))
        try:
            done = subprocess.run(
                ["./cacti", "-infile", "./self_gen/cache.cfg"],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CodesignError(f"CACTI could not run for a {query.describe()}: {exc}") from None
        output = folder / "self_gen" / "cache.cfg.out"
        if done.returncode != 0 or not output.is_file():
            reason = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
            said = " ".join(reason[-3:])[:200] if reason else f"exit code {done.returncode}"
            raise CodesignError(f"CACTI cannot model a {query.describe()}: {said}")
        rows = [line.split(",") for line in output.read_text().splitlines() if line.strip()]
    header = [cell.strip() for cell in rows[0]]
    result = dict(zip(header, (cell.strip() for cell in rows[1]), strict=False))
    try:
        return MemoryCosts(
            read_pj=float(result["Dynamic read energy (nJ)"]) * 1e3,
            write_pj=float(result["Dynamic write energy (nJ)"]) * 1e3,
            area_mm2=float(result["Area (mm2)"]),
        )
    except (KeyError, ValueError):
        raise CodesignError(f"CACTI gave no energy or area for a {query.describe()}") from None


@dataclass(frozen=True)
class PricedMemory:
    """A memory whose energy per access and area CACTI gave (what the accelerator file said is replaced)."""

    name: str
    size_bits: int
    access_bits: int
    read_pj: float
    write_pj: float
    area_mm2: float

    def describe(self) -> str:
        return (
            f"memories.{self.name}: {self.size_bits // 8:,} bytes, read {self.read_pj:.4g} pJ / write "
            f"{self.write_pj:.4g} pJ per {self.access_bits}-bit access, area {self.area_mm2:.4g} mm^2 (CACTI 7, "
            f"{TECHNOLOGY_UM * 1000:g} nm)"
        )


def with_cacti_costs(
    path: Path, data: dict[str, Any], overrides: dict[str, Any], cache_path: Path | None = None
) -> tuple[dict[str, Any], tuple[PricedMemory, ...]]:
    """A validated accelerator file's data with CACTI's read and write energy and area for each memory whose
    size `overrides` sets or whose entry asks for `auto_cost_extraction` (then switched off: ZigZag is handed
    the figures); an energy or area `overrides` sets itself stays (all three set: CACTI is not asked). A memory
    CACTI cannot serve is a one-line error naming it."""
    sized = {
        key.split(".")[1]
        for key in overrides
        if key.count(".") == 2 and key.startswith("memories.") and key.endswith(".size")
    }
    memories, priced = dict(data["memories"]), []
    for name, memory in data["memories"].items():
        if not memory.get("ports") or not (memory.get("auto_cost_extraction") or name in sized):
            continue  # an in-memory-computing array's cells are priced by ZigZag's own macro model
        if all(f"memories.{name}.{field_name}" in overrides for field_name in ("r_cost", "w_cost", "area")):
            continue  # every figure CACTI would give is set by hand
        query = CactiQuery.for_memory(memory)
        try:
            costs = cacti_costs(query, cache_path)
        except CodesignError as error:
            raise CodesignError(f"{path}: memories.{name}: {error}") from None
        updated = {**memory, "auto_cost_extraction": False}
        for field_name, value in (
            ("r_cost", costs.read_pj),
            ("w_cost", costs.write_pj),
            ("area", costs.area_mm2),
        ):
            if f"memories.{name}.{field_name}" not in overrides:
                updated[field_name] = value
        memories[name] = updated
        priced.append(
            PricedMemory(
                name,
                int(memory["size"]),
                query.io_bits,
                updated["r_cost"],
                updated["w_cost"],
                updated["area"],
            )
        )
    return {**data, "memories": memories}, tuple(priced)
