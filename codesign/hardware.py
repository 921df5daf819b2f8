"""Accelerator targets: a ZigZag accelerator YAML plus its mapping YAML, validated up front."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from codesign.errors import CodesignError

LIBRARY_DIR = Path(os.environ.get("CODESIGN_ACCELERATORS", Path(__file__).resolve().parents[1] / "accelerators"))
MAPPING_SUFFIX = ".mapping.yaml"


@dataclass(frozen=True)
class HardwareTarget:
    """An accelerator as ZigZag sees it. `digest` identifies the exact contents of both files."""

    name: str
    accelerator_path: Path
    mapping_path: Path
    digest: str
    accelerator_data: dict[str, Any] = field(compare=False, repr=False)
    mapping_data: list[dict[str, Any]] = field(compare=False, repr=False)


def library_names(library: Path = LIBRARY_DIR) -> list[str]:
    if not library.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in library.glob("*.yaml") if not p.name.endswith(MAPPING_SUFFIX))


def _read_yaml(path: Path, what: str) -> Any:
    if not path.is_file():
        raise CodesignError(f"{path}: file: expected an existing {what} YAML file")
    try:
        with path.open() as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "document"
        raise CodesignError(f"{path}: {where}: expected valid YAML ({getattr(exc, 'problem', exc)})") from None


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


def validate_accelerator(path: Path, data: Any) -> dict[str, Any]:
    from zigzag.parser.accelerator_validator import AcceleratorValidator

    if not isinstance(data, dict):
        raise CodesignError(f"{path}: document: expected a mapping with 'name', 'memories', 'operational_array'")
    validator = AcceleratorValidator(data)
    normalized = validator.normalized_data
    if not validator.validate():
        field_name, message = _first_error(validator.validator.errors)
        raise CodesignError(f"{path}: {field_name}: expected a valid ZigZag accelerator field ({message})")
    return normalized


def validate_mapping(path: Path, data: Any) -> list[dict[str, Any]]:
    from zigzag.parser.mapping_validator import MappingValidator

    if not isinstance(data, list):
        raise CodesignError(f"{path}: document: expected a list of mapping entries (each with 'name')")
    validator = MappingValidator(data)
    normalized = validator.normalized_data
    if not validator.validate():
        field_name, message = _first_error(getattr(validator.validator, "errors", {}) or {"document": [validator]})
        raise CodesignError(f"{path}: {field_name}: expected a valid ZigZag mapping entry ({message})")
    return normalized


def load_hardware(accelerator: str | Path, mapping: str | Path | None = None) -> HardwareTarget:
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
            raise CodesignError(f"{mapping_path}: file: expected the mapping YAML for accelerator {accel_path}")
    else:
        mapping_path = Path(mapping)
    accel_raw = _read_yaml(accel_path, "accelerator")
    mapping_raw = _read_yaml(mapping_path, "mapping")
    accel_data = validate_accelerator(accel_path, accel_raw)
    mapping_data = validate_mapping(mapping_path, mapping_raw)
    digest = hashlib.sha256(
        yaml.safe_dump(accel_raw, sort_keys=True).encode() + b"\0" + yaml.safe_dump(mapping_raw, sort_keys=True).encode()
    ).hexdigest()
    name = accel_raw.get("name") or accel_path.stem
    return HardwareTarget(str(name), accel_path.resolve(), mapping_path.resolve(), digest, accel_data, mapping_data)
