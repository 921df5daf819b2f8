"""Accelerator targets: a ZigZag accelerator YAML plus its mapping YAML, validated up front.

Library accelerators carry a top-level `codesign:` section (clock, cores, interconnect,
precision-aware MAC energy); it is removed before ZigZag sees the file, so any ZigZag 3.x
accelerator YAML works unchanged (clock 1000 MHz and one core are then assumed, and said so).
Any numeric field can be overridden by a dotted path, e.g. `operational_array.sizes=[16,16,4,4]`
or `memories.sram_2MB.size=8388608` or `codesign.clock_mhz=400`.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from codesign.errors import CodesignError
from codesign.files import read_yaml

LIBRARY_DIR = Path(
    os.environ.get("CODESIGN_ACCELERATORS", Path(__file__).resolve().parents[2] / "accelerators")
)
MAPPING_SUFFIX = ".mapping.yaml"
DEFAULT_CLOCK_MHZ = 1000.0
METADATA_KEY = "codesign"


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
    accelerator_data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    mapping_data: list[dict[str, Any]] = field(default_factory=list, compare=False, repr=False)

    def throughput_factor(self, weight_bits: int, act_bits: int) -> float:
        """MAC throughput multiplier of a precision-scalable array for these operand widths (1 if none)."""
        factors = [f for bits, f in self.precision_scalable if weight_bits <= bits and act_bits <= bits]
        return max(factors, default=1.0)

    def seconds(self, cycles: float) -> float:
        return cycles / self.clock_hz


def library_names(library: Path = LIBRARY_DIR) -> list[str]:
    if not library.is_dir():
        return []
    return sorted(
        p.name[: -len(".yaml")] for p in library.glob("*.yaml") if not p.name.endswith(MAPPING_SUFFIX)
    )


def _first_error(errors: Any, prefix: str = "") -> tuple[str, str]:
    """Flatten cerberus' nested error structure into (dotted field, message) of the first error."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            return _first_error(value, f"{prefix}.{key}" if prefix else str(key))
    if isinstance(errors, list):
        for item in errors:
            if isinstance(item, (dict, list)):
                return _first_error(item, prefix)
            return prefix or "document", str(item)
    return prefix or "document", str(errors)


class _CriticalLog(logging.Handler):
    """Collects the messages ZigZag's validators log at CRITICAL level instead of raising."""

    def __init__(self) -> None:
        super().__init__(level=logging.CRITICAL)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _zigzag_validate(path: Path, validator: Any, schema_ok: bool, what: str) -> None:
    """Schema errors first (cerberus), then ZigZag's own cross-field rules, as one-line errors."""
    if not schema_ok:
        field_name, message = _first_error(validator.validator.errors)
        raise CodesignError(f"{path}: {field_name}: expected a valid ZigZag {what} field ({message})")
    handler = _CriticalLog()
    zigzag_logger = logging.getLogger("zigzag.parser")
    zigzag_logger.addHandler(handler)
    try:
        valid = validator.validate()
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CodesignError(
            f"{path}: document: expected a consistent ZigZag {what} ({type(exc).__name__}: {exc})"
        ) from None
    finally:
        zigzag_logger.removeHandler(handler)
    if not valid:
        detail = handler.messages[0] if handler.messages else "rejected by ZigZag's validator"
        detail = detail.replace(f"User-defined {what} is invalid. ", "").replace("\n", " ")
        raise CodesignError(f"{path}: document: expected a valid ZigZag {what} ({detail})")


def validate_accelerator(path: Path, data: Any) -> dict[str, Any]:
    from zigzag.parser.accelerator_validator import AcceleratorValidator

    if not isinstance(data, dict):
        raise CodesignError(
            f"{path}: document: expected a mapping with 'name', 'memories', 'operational_array'"
        )
    validator = AcceleratorValidator(data)
    schema_ok = validator.validator.validate(validator.data)
    _zigzag_validate(path, validator, schema_ok, "accelerator")
    return validator.normalized_data


def validate_mapping(path: Path, data: Any) -> list[dict[str, Any]]:
    from zigzag.parser.mapping_validator import MappingValidator

    if not isinstance(data, list) or not all(isinstance(entry, dict) for entry in data):
        raise CodesignError(f"{path}: document: expected a list of mapping entries (each with 'name')")
    validator = MappingValidator(data)
    schema_ok = validator.validator.validate(validator.data, schema=validator.schema)
    _zigzag_validate(path, validator, schema_ok, "mapping")
    return validator.normalized_data


def parse_override(text: str) -> tuple[str, Any]:
    """`path.to.field=value` (value in YAML syntax, e.g. 16 or [16,16,4,4]) -> (path, value)."""
    if "=" not in text:
        raise CodesignError(
            f"--hw {text!r}: override: expected FIELD=VALUE, e.g. operational_array.sizes=[16,16,4,4]"
        )
    path, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise CodesignError(f"--hw {text!r}: value: expected a number or a list of numbers") from None
    return path.strip(), value


def _is_numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, list) and bool(value) and all(_is_numeric(v) for v in value)


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any], source: Path) -> dict[str, Any]:
    """Set numeric fields by dotted path (list items by index); the field must exist and stay numeric."""
    data = copy.deepcopy(data)
    for path, value in overrides.items():
        keys = path.split(".")
        node: Any = data
        for depth, key in enumerate(keys[:-1]):
            if (
                isinstance(node, list) and key.isdigit() and int(key) < len(node)
            ):  # e.g. ports.0.bandwidth_max
                node = node[int(key)]
                continue
            if not isinstance(node, dict) or key not in node:
                if key == METADATA_KEY and depth == 0:
                    node = data.setdefault(METADATA_KEY, {})
                    continue
                raise CodesignError(
                    f"{source}: {path}: expected an existing field to override ('{key}' not found)"
                )
            node = node[key]
        last = keys[-1]
        exists = isinstance(node, dict) and last in node
        if not exists and not (keys[0] == METADATA_KEY and isinstance(node, dict)):
            raise CodesignError(
                f"{source}: {path}: expected an existing field to override ('{last}' not found)"
            )
        if not _is_numeric(value) or (exists and not _is_numeric(node[last])):
            raise CodesignError(
                f"{source}: {path}: expected a numeric field and a numeric value, got {value!r}"
            )
        node[last] = value
    return data


def _metadata(path: Path, meta: Any) -> dict[str, Any]:
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise CodesignError(
            f"{path}: {METADATA_KEY}: expected a mapping (clock_mhz, cores, interconnect, mac_energy)"
        )
    known = {"description", "clock_mhz", "cores", "interconnect", "mac_energy", "precision_scalable"}
    for key in meta:
        if key not in known:
            raise CodesignError(f"{path}: {METADATA_KEY}.{key}: expected one of {sorted(known)}")
    return meta


def _positive(path: Path, field_name: str, value: Any, integer: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        raise CodesignError(
            f"{path}: {field_name}: expected a positive {'integer' if integer else 'number'}, got {value!r}"
        )
    return float(value)


def scale_spatial_mapping(
    mapping: list[dict[str, Any]], dimensions: list[str], old_sizes: list[int], new_sizes: list[int]
) -> list[dict[str, Any]]:
    """Follow a resized MAC array in the mapping: an unrolling that filled an array dimension fills the new size.

    ZigZag uses a fully specified spatial mapping as given, so without this a larger array would sit idle
    beyond the old unrolling; unrollings larger than a shrunk dimension are capped to it."""
    resized = {
        d: (int(o), int(n)) for d, o, n in zip(dimensions, old_sizes, new_sizes, strict=False) if o != n
    }
    if not resized:
        return mapping
    scaled = []
    for entry in mapping:
        entry = dict(entry)
        spatial = entry.get("spatial_mapping")
        if isinstance(spatial, dict):
            spatial = dict(spatial)
            for dim, (old, new) in resized.items():
                factors = spatial.get(dim)
                if (
                    not isinstance(factors, list)
                    or not factors
                    or not all(isinstance(f, str) for f in factors)
                ):
                    continue
                try:
                    parsed = [(f.partition(",")[0].strip(), int(f.partition(",")[2])) for f in factors]
                except ValueError:
                    continue
                product = math.prod(u for _, u in parsed)
                name, last = parsed[-1]
                if product == old and (last * new) % old == 0:
                    last = (
                        last * new // old
                    )  # it filled the dimension: the innermost factor follows the resize
                elif product > new:
                    last = max(1, last * new // product)  # cap an unrolling larger than the shrunk dimension
                spatial[dim] = [f"{n}, {u}" for n, u in parsed[:-1]] + [f"{name}, {last}"]
            entry["spatial_mapping"] = spatial
        scaled.append(entry)
    return scaled


def load_hardware(
    accelerator: str | Path, mapping: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> HardwareTarget:
    """Resolve a library name (e.g. `edge_tpu_like`) or an accelerator YAML path, plus its mapping.

    Without an explicit mapping, `<accelerator>.mapping.yaml` beside the accelerator file is used.
    """
    accel_path = Path(accelerator)
    if not accel_path.suffix:
        candidate = LIBRARY_DIR / f"{accelerator}.yaml"
        if not candidate.is_file():
            raise CodesignError(
                f"accelerator {accelerator!r}: name: expected one of {library_names()} or a path to a ZigZag YAML"
            )
        accel_path = candidate
    if mapping is None:
        mapping_path = accel_path.with_name(accel_path.name[: -len(".yaml")] + MAPPING_SUFFIX)
        if not mapping_path.is_file():
            raise CodesignError(
                f"{mapping_path}: file: expected the mapping YAML for accelerator {accel_path}"
            )
    else:
        mapping_path = Path(mapping)
    accel_raw = read_yaml(accel_path, "accelerator")
    mapping_raw = read_yaml(mapping_path, "mapping")
    if not isinstance(accel_raw, dict):
        raise CodesignError(
            f"{accel_path}: document: expected a mapping with 'name', 'memories', 'operational_array'"
        )
    if overrides:
        original_sizes = (accel_raw.get("operational_array") or {}).get("sizes")
        accel_raw = apply_overrides(accel_raw, overrides, accel_path)
        array = accel_raw.get("operational_array") or {}
        if original_sizes and array.get("sizes") != original_sizes and isinstance(mapping_raw, list):
            mapping_raw = scale_spatial_mapping(
                mapping_raw, list(array.get("dimensions", [])), list(original_sizes), list(array["sizes"])
            )
    meta = _metadata(accel_path, accel_raw.get(METADATA_KEY))
    zigzag_raw = {k: v for k, v in accel_raw.items() if k != METADATA_KEY}
    accel_data = validate_accelerator(accel_path, zigzag_raw)
    mapping_data = validate_mapping(mapping_path, mapping_raw)
    digest = hashlib.sha256(
        yaml.safe_dump(zigzag_raw, sort_keys=True).encode()
        + b"\0"
        + yaml.safe_dump(mapping_raw, sort_keys=True).encode()
    ).hexdigest()
    clock_assumed = "clock_mhz" not in meta
    clock_mhz = _positive(accel_path, f"{METADATA_KEY}.clock_mhz", meta.get("clock_mhz", DEFAULT_CLOCK_MHZ))
    cores = int(_positive(accel_path, f"{METADATA_KEY}.cores", meta.get("cores", 1), integer=True))
    interconnect = None
    if "interconnect" in meta:
        ic = meta["interconnect"]
        if not isinstance(ic, dict):
            raise CodesignError(f"{accel_path}: {METADATA_KEY}.interconnect: expected a mapping")
        interconnect = Interconnect(
            bandwidth_bits_per_cycle=_positive(
                accel_path,
                f"{METADATA_KEY}.interconnect.bandwidth_bits_per_cycle",
                ic.get("bandwidth_bits_per_cycle"),
            ),
            energy_pj_per_bit=float(ic.get("energy_pj_per_bit", 0.0)),
            latency_cycles=float(ic.get("latency_cycles", 0.0)),
        )
    if cores > 1 and interconnect is None:
        raise CodesignError(
            f"{accel_path}: {METADATA_KEY}.interconnect: expected an interconnect for {cores} cores"
        )
    mac = meta.get("mac_energy", {}) or {}
    mac_model = MacEnergyModel(
        reference_bits=tuple(int(b) for b in mac.get("reference_bits", (8, 8))),
        multiplier_share=float(mac.get("multiplier_share", 0.85)),
    )
    if not 0.0 <= mac_model.multiplier_share <= 1.0 or len(mac_model.reference_bits) != 2:
        raise CodesignError(
            f"{accel_path}: {METADATA_KEY}.mac_energy: expected reference_bits [w, a] and multiplier_share in [0, 1]"
        )
    scalable = meta.get("precision_scalable", {}) or {}
    if not isinstance(scalable, dict):
        raise CodesignError(
            f"{accel_path}: {METADATA_KEY}.precision_scalable: expected a mapping bits -> factor"
        )
    name = str(accel_raw.get("name") or accel_path.stem)
    return HardwareTarget(
        name=name if not overrides else f"{name}[{','.join(f'{k}={v}' for k, v in overrides.items())}]",
        accelerator_path=accel_path.resolve(),
        mapping_path=Path(mapping_path).resolve(),
        digest=digest,
        clock_hz=clock_mhz * 1e6,
        clock_assumed=clock_assumed,
        cores=cores,
        interconnect=interconnect,
        mac_energy=mac_model,
        precision_scalable=tuple(sorted((int(b), float(f)) for b, f in scalable.items())),
        description=str(meta.get("description", "")),
        overrides=tuple((k, repr(v)) for k, v in (overrides or {}).items()),
        accelerator_data=accel_data,
        mapping_data=mapping_data,
    )


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


def on_chip_levels(target: HardwareTarget, operand: str) -> list[MemoryLevel]:
    """Memories serving `operand`, smallest first, without the off-chip level: the hierarchy's largest
    memory (an operand it does not serve, e.g. activations kept on chip, keeps all of its levels)."""
    levels = memory_levels(target)
    off_chip = max(levels, key=lambda m: m.size_bits)
    serving = sorted((m for m in levels if operand in m.operands), key=lambda m: m.size_bits)
    on_chip = [m for m in serving if m is not off_chip]
    return on_chip or serving


def weight_operand(target: HardwareTarget) -> str:
    """The memory operand that holds weights."""
    return operand_links(target).get("W", "I2")


def on_chip_weight_bytes(target: HardwareTarget, cores: int | None = None) -> float:
    """On-chip memory that can hold weights on `cores` cores (default: all of them); memories shared with
    activations count fully."""
    per_core = sum(m.size_bits for m in on_chip_levels(target, weight_operand(target))) / 8
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
        layer_op: sum(m.size_bits for m in on_chip_levels(target, mem_op)) / 8 / 1024
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
        "mac_energy_pj": float(array["unit_energy"]),
        "clock_mhz": target.clock_hz / 1e6,
        "precision_scalable": " ".join(f"<={b}b:x{f:g}" for b, f in target.precision_scalable) or "-",
        "description": target.description,
    }


def zigzag_accelerator_file(target: HardwareTarget, folder: Path | None = None) -> Path:
    """The accelerator as a plain ZigZag YAML (metadata removed, overrides applied), for calling ZigZag directly."""
    folder = (
        folder or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "codesign" / "accelerators"
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{target.accelerator_path.stem}-{target.digest[:16]}.yaml"
    if not path.is_file():
        raw = read_yaml(target.accelerator_path, "accelerator")
        overrides = {k: yaml.safe_load(v) for k, v in target.overrides}
        raw = apply_overrides(raw, overrides, target.accelerator_path) if overrides else raw
        raw.pop(METADATA_KEY, None)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(yaml.safe_dump(raw, sort_keys=False))
        os.replace(tmp, path)
    return path
