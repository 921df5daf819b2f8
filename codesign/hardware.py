"""Accelerator targets: a ZigZag accelerator YAML plus its mapping YAML, validated up front."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from codesign.errors import CodesignError

LIBRARY_DIR = Path(
    os.environ.get("CODESIGN_ACCELERATORS", Path(__file__).resolve().parents[1] / "accelerators")
)
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
    return sorted(
        p.name[: -len(".yaml")] for p in library.glob("*.yaml") if not p.name.endswith(MAPPING_SUFFIX)
    )


def _read_yaml(path: Path, what: str) -> Any:
    if not path.is_file():
        raise CodesignError(f"{path}: file: expected an existing {what} YAML file")
    try:
        with path.open() as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "document"
        raise CodesignError(
            f"{path}: {where}: expected valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None


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
            raise CodesignError(
                f"{mapping_path}: file: expected the mapping YAML for accelerator {accel_path}"
            )
    else:
        mapping_path = Path(mapping)
    accel_raw = _read_yaml(accel_path, "accelerator")
    mapping_raw = _read_yaml(mapping_path, "mapping")
    accel_data = validate_accelerator(accel_path, accel_raw)
    mapping_data = validate_mapping(mapping_path, mapping_raw)
    digest = hashlib.sha256(
        yaml.safe_dump(accel_raw, sort_keys=True).encode()
        + b"\0"
        + yaml.safe_dump(mapping_raw, sort_keys=True).encode()
    ).hexdigest()
    name = accel_raw.get("name") or accel_path.stem
    return HardwareTarget(
        str(name), accel_path.resolve(), mapping_path.resolve(), digest, accel_data, mapping_data
    )
