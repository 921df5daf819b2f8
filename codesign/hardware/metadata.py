"""The `codesign:` section of an accelerator file: clock, cores, interconnect, precision-aware MAC energy and
DVFS operating points, each field checked with a one-line error naming the file and the field."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesign.errors import CodesignError
from codesign.hardware.overrides import METADATA_KEY

METADATA_FIELDS = (
    "description",
    "clock_mhz",
    "cores",
    "interconnect",
    "mac_energy",
    "precision_scalable",
    "dvfs",
)


@dataclass(frozen=True)
class MacEnergyModel:
    """MAC energy as a function of operand widths.

    ZigZag charges `unit_energy` per MAC whatever the precision. We split that energy at the
    reference precision into a multiplier share, scaling with the product of operand widths
    (array multiplier: w x a partial-product bits), and an adder/accumulator share, scaling with
    their sum (ripple/carry-save adder width). Horowitz (ISSCC 2014, 45 nm): 8-bit multiply 0.2 pJ,
    8-bit add 0.03 pJ, i.e. a multiplier share of about 0.85-0.87 at 8x8 bits.
    """

    reference_bits: tuple[int, int] = (8, 8)
    multiplier_share: float = 0.85

    def scale(self, weight_bits: int, act_bits: int) -> float:
        ref_w, ref_a = self.reference_bits
        product = (weight_bits * act_bits) / (ref_w * ref_a)
        total = (weight_bits + act_bits) / (ref_w + ref_a)
        return self.multiplier_share * product + (1.0 - self.multiplier_share) * total


@dataclass(frozen=True)
class Interconnect:
    bandwidth_bits_per_cycle: float
    energy_pj_per_bit: float
    latency_cycles: float = 0.0

    def transfer(self, bits: float) -> tuple[float, float]:
        """(energy pJ, latency cycles) of moving `bits` between two cores."""
        if bits <= 0:
            return 0.0, 0.0
        return bits * self.energy_pj_per_bit, self.latency_cycles + math.ceil(
            bits / self.bandwidth_bits_per_cycle
        )


@dataclass(frozen=True)
class OperatingPoint:
    """A DVFS operating point and what it does to costs (see `_operating_point` for the model).

    Dynamic energy (MACs, memory accesses) scales with (V / V_ref)^2 from the energies in the accelerator
    file, which are taken to hold at `reference_voltage`; static (leakage) power scales linearly with V,
    a first-order model (leakage current roughly constant over a small voltage range), and is paid for
    every cycle an inference takes, so a slower clock is not free."""

    index: int
    clock_mhz: float
    voltage: float
    reference_voltage: float
    static_power_w: float  # at this operating point

    @property
    def energy_scale(self) -> float:
        return (self.voltage / self.reference_voltage) ** 2


def parse_metadata(path: Path, meta: Any) -> dict[str, Any]:
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise CodesignError(
            f"{path}: {METADATA_KEY}: expected a mapping (clock_mhz, cores, interconnect, mac_energy)"
        )
    for key in meta:
        if key not in METADATA_FIELDS:
            raise CodesignError(f"{path}: {METADATA_KEY}.{key}: expected one of {sorted(METADATA_FIELDS)}")
    return meta


def number(path: Path, field_name: str, value: Any, *, minimum: float = 0.0, strict: bool = True) -> float:
    """A finite number above `minimum` (at least it, if not `strict`), or a one-line error."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > minimum if strict else value >= minimum)
    if not ok:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise CodesignError(f"{path}: {field_name}: expected a finite number {bound}, got {value!r}")
    return float(value)


def positive(path: Path, field_name: str, value: Any, integer: bool = False) -> float:
    ok = (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        raise CodesignError(
            f"{path}: {field_name}: expected a positive {'integer' if integer else 'number'}, got {value!r}"
        )
    return float(value)


def parse_interconnect(path: Path, data: Any) -> Interconnect | None:
    if data is None:
        return None
    where = f"{METADATA_KEY}.interconnect"
    if not isinstance(data, dict):
        raise CodesignError(
            f"{path}: {where}: expected a mapping (bandwidth_bits_per_cycle, energy_pj_per_bit)"
        )
    for key in data:
        if key not in ("bandwidth_bits_per_cycle", "energy_pj_per_bit", "latency_cycles"):
            raise CodesignError(
                f"{path}: {where}.{key}: expected one of bandwidth_bits_per_cycle, energy_pj_per_bit, latency_cycles"
            )
    return Interconnect(
        bandwidth_bits_per_cycle=positive(
            path, f"{where}.bandwidth_bits_per_cycle", data.get("bandwidth_bits_per_cycle")
        ),
        energy_pj_per_bit=number(
            path, f"{where}.energy_pj_per_bit", data.get("energy_pj_per_bit", 0.0), strict=False
        ),
        latency_cycles=number(path, f"{where}.latency_cycles", data.get("latency_cycles", 0.0), strict=False),
    )


def parse_mac_energy(path: Path, data: Any) -> MacEnergyModel:
    where = f"{METADATA_KEY}.mac_energy"
    expected = "reference_bits [w, a] (positive integers) and multiplier_share in [0, 1]"
    if not isinstance(data, dict) or set(data) - {"reference_bits", "multiplier_share"}:
        raise CodesignError(f"{path}: {where}: expected a mapping with {expected}, got {data!r}")
    bits = data.get("reference_bits", [8, 8])
    share = data.get("multiplier_share", 0.85)
    bits_ok = isinstance(bits, (list, tuple)) and len(bits) == 2
    bits_ok = bits_ok and all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in bits)
    share_ok = isinstance(share, (int, float)) and not isinstance(share, bool) and 0.0 <= share <= 1.0
    if not (bits_ok and share_ok):
        raise CodesignError(f"{path}: {where}: expected {expected}, got {data!r}")
    return MacEnergyModel(reference_bits=(int(bits[0]), int(bits[1])), multiplier_share=float(share))


def parse_precision_scalable(path: Path, data: Any) -> tuple[tuple[int, float], ...]:
    where = f"{METADATA_KEY}.precision_scalable"
    if not isinstance(data, dict):
        raise CodesignError(f"{path}: {where}: expected a mapping bits -> throughput factor, e.g. {{4: 2}}")
    table = []
    for bits, factor in data.items():
        bits_ok = isinstance(bits, int) and not isinstance(bits, bool) and 1 <= bits <= 32
        factor_ok = (
            isinstance(factor, (int, float)) and not isinstance(factor, bool) and math.isfinite(factor)
        )
        if not bits_ok or not factor_ok or factor < 1:
            raise CodesignError(
                f"{path}: {where}.{bits}: expected an integer bit width 1-32 -> a factor >= 1, got {factor!r}"
            )
        table.append((int(bits), float(factor)))
    return tuple(sorted(table))


def parse_operating_point(path: Path, data: Any) -> OperatingPoint | None:
    """`codesign.dvfs`: {reference_voltage, static_power_mw (at the reference voltage), points: [{clock_mhz,
    voltage}, ...], point: index of the one in use}; `codesign.dvfs.point` is searchable like any field."""
    if data is None:
        return None
    where = f"{METADATA_KEY}.dvfs"
    keys = {"reference_voltage", "static_power_mw", "points", "point"}
    if not isinstance(data, dict) or set(data) - keys or "points" not in data:
        raise CodesignError(f"{path}: {where}: expected a mapping with {sorted(keys)}, got {data!r}")
    reference = positive(path, f"{where}.reference_voltage", data.get("reference_voltage"))
    static_mw = number(path, f"{where}.static_power_mw", data.get("static_power_mw", 0.0), strict=False)
    points = data["points"]
    if not isinstance(points, list) or not points:
        raise CodesignError(
            f"{path}: {where}.points: expected a list of {{clock_mhz, voltage}}, got {points!r}"
        )
    index = data.get("point", 0)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(points):
        raise CodesignError(
            f"{path}: {where}.point: expected an index in 0..{len(points) - 1}, got {index!r}"
        )
    chosen = points[index]
    if not isinstance(chosen, dict) or set(chosen) != {"clock_mhz", "voltage"}:
        raise CodesignError(
            f"{path}: {where}.points.{index}: expected {{clock_mhz, voltage}}, got {chosen!r}"
        )
    voltage = positive(path, f"{where}.points.{index}.voltage", chosen["voltage"])
    return OperatingPoint(
        index=index,
        clock_mhz=positive(path, f"{where}.points.{index}.clock_mhz", chosen["clock_mhz"]),
        voltage=voltage,
        reference_voltage=reference,
        static_power_w=static_mw * 1e-3 * voltage / reference,
    )
