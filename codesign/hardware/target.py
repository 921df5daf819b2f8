"""Accelerator targets: a ZigZag accelerator YAML plus its mapping YAML, validated up front.

Library accelerators carry a top-level `codesign:` section (clock, cores, interconnect,
precision-aware MAC energy); it is removed before ZigZag sees the file, so any ZigZag 3.x
accelerator YAML works unchanged (clock 1000 MHz and one core are then assumed, and said so).
Any numeric field can be overridden by a dotted path, e.g. `operational_array.sizes=[16,16,4,4]`
or `memories.sram_2MB.size=8388608` or `codesign.clock_mhz=400`.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from codesign.errors import CodesignError
from codesign.files import atomic_write_text, library_dir, read_yaml
from codesign.hardware.cacti import PricedMemory, with_cacti_costs
from codesign.hardware.metadata import (
    Interconnect,
    MacEnergyModel,
    OperatingPoint,
    parse_interconnect,
    parse_mac_energy,
    parse_metadata,
    parse_operating_point,
    parse_precision_scalable,
    positive,
)
from codesign.hardware.overrides import METADATA_KEY, apply_overrides, scale_spatial_mapping
from codesign.hardware.zigzag_files import check_mapping_fits, validate_accelerator, validate_mapping

MAPPING_SUFFIX = ".mapping.yaml"
DEFAULT_CLOCK_MHZ = 1000.0


@dataclass(frozen=True)
class HardwareTarget:
    """An accelerator as ZigZag sees it, plus codesign's metadata.

    `digest` identifies the ZigZag-relevant contents of both files (after overrides): it is what
    layer-cost cache entries are keyed on, so changing the clock does not invalidate them.
    """

    name: str
    accelerator_path: Path
    mapping_path: Path
    digest: str
    clock_hz: float
    clock_assumed: bool
    cores: int = 1
    interconnect: Interconnect | None = None
    mac_energy: MacEnergyModel = field(default_factory=MacEnergyModel)
    precision_scalable: tuple[tuple[int, float], ...] = ()
    description: str = ""
    overrides: tuple[tuple[str, str], ...] = ()
    # None: no DVFS model (energies as in the file, no static power)
    operating_point: OperatingPoint | None = None
    notes: tuple[str, ...] = ()  # what a user should know about how these files are costed
    cacti_memories: tuple[PricedMemory, ...] = ()  # memories whose energy and area CACTI gave
    accelerator_data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    mapping_data: list[dict[str, Any]] = field(default_factory=list, compare=False, repr=False)

    def throughput_factor(self, weight_bits: int, act_bits: int) -> float:
        """MAC throughput multiplier of a precision-scalable array for these operand widths (1 if none)."""
        factors = [f for bits, f in self.precision_scalable if weight_bits <= bits and act_bits <= bits]
        return max(factors, default=1.0)

    def seconds(self, cycles: float) -> float:
        return cycles / self.clock_hz

    @property
    def energy_scale(self) -> float:
        """Dynamic energy at the operating point relative to the file's energies (1 without DVFS)."""
        return self.operating_point.energy_scale if self.operating_point else 1.0

    @property
    def static_pj_per_cycle(self) -> float:
        """Static (leakage) energy per clock cycle of all cores, in pJ (0 without DVFS)."""
        if self.operating_point is None:
            return 0.0
        return self.operating_point.static_power_w * self.cores / self.clock_hz * 1e12

    @property
    def fingerprint(self) -> str:
        """Everything about the target that changes a cost: ZigZag's view of both files (`digest`), the
        clock, the cores, the interconnect and the MAC-energy and precision-scaling models."""
        parts = self._fingerprint_parts
        if self.operating_point is not None:  # only then: targets without DVFS keep their fingerprint
            parts = (*parts, self.operating_point)
        return _fingerprint(self.digest, parts)

    @property
    def earlier_fingerprints(self) -> tuple[str, ...]:
        """What earlier versions recorded for this same target: from DVFS's introduction until the fingerprint
        left it out again, the absent operating point was part of it (`None`)."""
        if self.operating_point is not None:
            return ()
        return (_fingerprint(self.digest, (*self._fingerprint_parts, None)),)

    @property
    def _fingerprint_parts(self) -> tuple[object, ...]:
        return (self.clock_hz, self.cores, self.interconnect, self.mac_energy, self.precision_scalable)


def _fingerprint(digest: str, parts: tuple[object, ...]) -> str:
    return hashlib.sha256((digest + repr(parts)).encode()).hexdigest()[:16]


def accelerator_library() -> Path:
    """The accelerator library: `$CODESIGN_ACCELERATORS`, else the one shipped with codesign."""
    return Path(os.environ.get("CODESIGN_ACCELERATORS") or library_dir("accelerators"))


def library_names(library: Path | None = None) -> list[str]:
    library = library or accelerator_library()
    if not library.is_dir():
        return []
    return sorted(
        p.name[: -len(".yaml")] for p in library.glob("*.yaml") if not p.name.endswith(MAPPING_SUFFIX)
    )


def load_hardware(
    accelerator: str | Path, mapping: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> HardwareTarget:
    """Resolve a library name (e.g. `edge_tpu_like`) or an accelerator YAML path, plus its mapping.

    Without an explicit mapping, `<accelerator>.mapping.yaml` beside the accelerator file is used.
    The steps: find both files, read them, apply the overrides (the spatial mapping follows a resized
    array), validate both with ZigZag's own validators, read codesign's `codesign:` section.
    """
    accel_path, mapping_path = _resolve_files(accelerator, mapping)
    accel_raw = read_yaml(accel_path, "accelerator")
    mapping_raw = read_yaml(mapping_path, "mapping")
    if not isinstance(accel_raw, dict):
        raise CodesignError(
            f"{accel_path}: document: expected a mapping with 'name', 'memories', 'operational_array'"
        )
    if overrides:
        accel_raw, mapping_raw = _overridden(accel_raw, mapping_raw, overrides, accel_path)
    meta = parse_metadata(accel_path, accel_raw.get(METADATA_KEY))
    zigzag_raw = {k: v for k, v in accel_raw.items() if k != METADATA_KEY}
    accel_data = validate_accelerator(accel_path, zigzag_raw)
    accel_data, priced = with_cacti_costs(accel_path, accel_data, overrides or {})
    notes: list[str] = [memory.describe() for memory in priced]
    mapping_data = validate_mapping(mapping_path, mapping_raw, notes)
    for warning in check_mapping_fits(mapping_path, mapping_data, accel_data):
        _warn_once(warning)
    digest = hashlib.sha256(
        yaml.safe_dump(_without_areas(zigzag_raw), sort_keys=True).encode()
        + b"\0"
        + yaml.safe_dump(mapping_raw, sort_keys=True).encode()
        + (repr(priced).encode() if priced else b"")  # CACTI's figures replace the file's
    ).hexdigest()
    cores = int(positive(accel_path, f"{METADATA_KEY}.cores", meta.get("cores", 1), integer=True))
    interconnect = parse_interconnect(accel_path, meta.get("interconnect"))
    if cores > 1 and interconnect is None:
        raise CodesignError(
            f"{accel_path}: {METADATA_KEY}.interconnect: expected an interconnect for {cores} cores"
        )
    clock_mhz = positive(accel_path, f"{METADATA_KEY}.clock_mhz", meta.get("clock_mhz", DEFAULT_CLOCK_MHZ))
    point = parse_operating_point(accel_path, meta.get("dvfs"))
    if point is not None:
        clock_mhz = point.clock_mhz
    name = str(accel_raw.get("name") or accel_path.stem)
    return HardwareTarget(
        name=name if not overrides else f"{name}[{','.join(f'{k}={v}' for k, v in overrides.items())}]",
        accelerator_path=accel_path.resolve(),
        mapping_path=Path(mapping_path).resolve(),
        digest=digest,
        clock_hz=clock_mhz * 1e6,
        clock_assumed="clock_mhz" not in meta and point is None,
        cores=cores,
        interconnect=interconnect,
        mac_energy=parse_mac_energy(accel_path, meta.get("mac_energy") or {}),
        precision_scalable=parse_precision_scalable(accel_path, meta.get("precision_scalable") or {}),
        description=str(meta.get("description", "")),
        overrides=tuple((k, repr(v)) for k, v in (overrides or {}).items()),
        operating_point=point,
        notes=tuple(notes),
        cacti_memories=priced,
        accelerator_data=accel_data,
        mapping_data=mapping_data,
    )


def _without_areas(zigzag_raw: dict[str, Any]) -> dict[str, Any]:
    """The file as far as layer costs go: areas change no layer's energy or latency, so they are left out of
    the digest (set to 0 and 1 per MAC, as every library file stated before it recorded real areas), and
    recording or correcting an area keeps every cached layer cost and every run's identity."""
    memories = zigzag_raw.get("memories")
    array = zigzag_raw.get("operational_array")
    if not isinstance(memories, dict) or not isinstance(array, dict):
        return zigzag_raw
    return {
        **zigzag_raw,
        "memories": {
            name: {**memory, "area": 0} if isinstance(memory, dict) and "area" in memory else memory
            for name, memory in memories.items()
        },
        "operational_array": {**array, "unit_area": 1} if "unit_area" in array else array,
    }


def without_file(error: CodesignError) -> str:
    """An accelerator or mapping file's error without the file's name at its start: the rest of a line that
    blames what set the field (a workload's overrides, `--hw`) instead."""
    text = str(error)
    for suffix in (".yaml: ", ".yml: "):
        head, found, rest = text.partition(suffix)
        if found and " " not in head.strip("/"):
            return rest
    return text


MAPPING_FIELD = "mapping"  # a hardware field naming another mapping file: the dataflow, as a gene


def load_variant(base: HardwareTarget, fields: dict[str, Any]) -> HardwareTarget:
    """`base`'s accelerator file with these fields set: numeric fields by dotted path (`--hw`), and
    `mapping`: another mapping file for the same accelerator (a searched dataflow)."""
    fields = dict(fields)
    mapping = fields.pop(MAPPING_FIELD, None)
    return load_hardware(base.accelerator_path, mapping or base.mapping_path, fields)


def _resolve_files(accelerator: str | Path, mapping: str | Path | None) -> tuple[Path, Path]:
    """(accelerator file, mapping file) of a library name or an accelerator path."""
    accel_path = Path(accelerator)
    if not accel_path.suffix:
        candidate = accelerator_library() / f"{accelerator}.yaml"
        if not candidate.is_file():
            raise CodesignError(
                f"accelerator {accelerator!r}: name: expected one of {library_names()} or a path to a ZigZag YAML"
            )
        accel_path = candidate
    if not accel_path.is_file():
        raise CodesignError(f"{accel_path}: file: expected an existing accelerator YAML file")
    if mapping is not None:
        return accel_path, Path(mapping)
    mapping_path = accel_path.with_name(accel_path.stem + MAPPING_SUFFIX)
    if not mapping_path.is_file():
        raise CodesignError(f"{mapping_path}: file: expected the mapping YAML for accelerator {accel_path}")
    return accel_path, mapping_path


def _overridden(
    accel_raw: dict[str, Any], mapping_raw: Any, overrides: dict[str, Any], accel_path: Path
) -> tuple[dict[str, Any], Any]:
    """Both files with `overrides` applied; a resized MAC array takes the spatial mapping with it."""
    original_sizes = (accel_raw.get("operational_array") or {}).get("sizes")
    accel_raw = apply_overrides(accel_raw, overrides, accel_path)
    array = accel_raw.get("operational_array") or {}
    if original_sizes and array.get("sizes") != original_sizes and isinstance(mapping_raw, list):
        mapping_raw = scale_spatial_mapping(
            mapping_raw, list(array.get("dimensions", [])), list(original_sizes), list(array["sizes"])
        )
    return accel_raw, mapping_raw


def zigzag_accelerator_file(target: HardwareTarget, folder: Path | None = None) -> Path:
    """The accelerator as a plain ZigZag YAML (metadata removed, overrides applied), for calling ZigZag directly."""
    folder = (
        folder or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "codesign" / "accelerators"
    )
    path = folder / f"{target.accelerator_path.stem}-{target.digest[:16]}.yaml"
    if not path.is_file():
        raw = read_yaml(target.accelerator_path, "accelerator")
        overrides = {k: yaml.safe_load(v) for k, v in target.overrides}
        raw = apply_overrides(raw, overrides, target.accelerator_path) if overrides else raw
        raw.pop(METADATA_KEY, None)
        atomic_write_text(path, yaml.safe_dump(raw, sort_keys=False))
    return path


def load_overridden(
    accelerator: str | Path,
    mapping: str | Path | None,
    base: dict[str, Any],
    added: dict[str, Any],
    blamed: tuple[str, str],
) -> HardwareTarget:
    """The accelerator with `base` and then `added` overrides. If only `added` makes it fail, the line blames
    what set them (an option, a workload field), not the accelerator file: `blamed` is (prefix before a named
    override's field, prefix otherwise)."""
    try:
        return load_hardware(accelerator, mapping, overrides={**base, **added})
    except CodesignError as error:
        if not added:
            raise
        load_hardware(accelerator, mapping, overrides=base)  # base's own errors are its own
        reason = without_file(error)
        named = any(reason.startswith(f"{path}:") for path in added)
        raise CodesignError(f"{blamed[0] if named else blamed[1]}{reason}") from None


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """One line on stderr, once per process (an accelerator is loaded again for every variant and worker)."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"codesign: warning: {message}", file=sys.stderr, flush=True)
