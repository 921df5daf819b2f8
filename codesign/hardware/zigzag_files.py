"""ZigZag's own accelerator and mapping validators, turned into one-line errors naming the file and field.

ZigZag's validators log their cross-field complaints at CRITICAL level instead of raising; they are
collected here and the first one is reported.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import yaml

from codesign.errors import CodesignError


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
    disabled, propagate = logging.root.manager.disable, zigzag_logger.propagate
    logging.disable(logging.NOTSET)  # ZigZag's reasons arrive as log records: read them even where the caller
    zigzag_logger.propagate = False  # (a notebook, a test) switched logging off, and print none of them
    try:
        valid = validator.validate()
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CodesignError(
            f"{path}: document: expected a consistent ZigZag {what} ({type(exc).__name__}: {exc})"
        ) from None
    finally:
        logging.disable(disabled)
        zigzag_logger.propagate = propagate
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
    normalized = validator.normalized_data
    _check_sizes(path, normalized)
    return normalized


def _check_sizes(path: Path, data: dict[str, Any]) -> None:
    """Sizes ZigZag accepts but cannot map onto (it fails deep inside its search, or divides by zero)."""
    for index, size in enumerate(data["operational_array"]["sizes"]):
        if not (isinstance(size, int) and size > 0):
            raise CodesignError(
                f"{path}: operational_array.sizes.{index}: expected a positive integer, got {size!r}"
            )
    for name, memory in data["memories"].items():
        if not (isinstance(memory["size"], int | float) and memory["size"] > 0):
            raise CodesignError(
                f"{path}: memories.{name}.size: expected a positive size in bits, got {memory['size']!r}"
            )
        for index, port in enumerate(memory["ports"]):
            if not port.get("bandwidth_max", 0) > 0:
                raise CodesignError(
                    f"{path}: memories.{name}.ports.{index}.bandwidth_max: expected a positive number of bits "
                    f"per cycle, got {port.get('bandwidth_max')!r}"
                )


def validate_mapping(path: Path, data: Any, notes: list[str] | None = None) -> list[dict[str, Any]]:
    """The mapping, validated by ZigZag; `notes` receives what it may do that the user should know."""
    from zigzag.parser.mapping_validator import MappingValidator

    if not isinstance(data, list) or not all(isinstance(entry, dict) for entry in data):
        raise CodesignError(f"{path}: document: expected a list of mapping entries (each with 'name')")
    validator = MappingValidator(data)
    schema_ok = validator.validator.validate(validator.data, schema=validator.schema)
    _zigzag_validate(path, validator, schema_ok, "mapping")
    normalized = validator.normalized_data
    generic = _check_loop_dimensions(path, normalized)
    if generic and notes is not None:
        notes.append(
            f"{path.name} maps ZigZag's generic loop dimensions {', '.join(sorted(generic))} (of its own YAML "
            f"workloads), which no layer codesign costs has: ZigZag ignores those entries and chooses itself"
        )
    return normalized


# The loop dimensions of the layers codesign hands to ZigZag (convolutions and matrix products). ZigZag
# ignores a mapping entry for any other name, which silently changes the mapping, so other names are
# refused, except ZigZag's generic D0, D1, ... (its shipped GEMM mappings use them), which are noted.
LOOP_DIMENSIONS = ("B", "K", "G", "OX", "OY", "C", "FX", "FY", "D", "H")
LAYER_OPERANDS = ("W", "I", "O")
GENERIC_DIMENSION = re.compile(r"^D\d+$")


def _check_loop_dimensions(path: Path, entries: list[dict[str, Any]]) -> set[str]:
    """Refuses unknown loop dimensions; returns the generic ones (`D0`, ...) found."""
    generic: set[str] = set()

    def check(dim: str, where: str) -> None:
        if dim in LOOP_DIMENSIONS:
            return
        if GENERIC_DIMENSION.match(dim):
            generic.add(dim)
            return
        raise CodesignError(
            f"{path}: {where}: expected loop dimensions among {list(LOOP_DIMENSIONS)}, got {dim!r}"
        )

    for index, entry in enumerate(entries):
        where = f"[{index}] ({entry.get('name')})"
        for array_dim, factors in (entry.get("spatial_mapping") or {}).items():
            for factor in factors:
                check(str(factor).partition(",")[0].strip(), f"{where}.spatial_mapping.{array_dim}")
        for step in entry.get("temporal_ordering") or []:
            check(
                str(step[0] if isinstance(step, list | tuple) and step else step),
                f"{where}.temporal_ordering",
            )
        for operand in entry.get("memory_operand_links") or {}:
            if operand not in LAYER_OPERANDS:
                raise CodesignError(
                    f"{path}: {where}.memory_operand_links.{operand}: expected layer operands among {list(LAYER_OPERANDS)}"
                )
    return generic


def check_mapping_fits(path: Path, mapping: list[dict[str, Any]], accelerator: dict[str, Any]) -> list[str]:
    """Every spatial unrolling names an array dimension and fits it. ZigZag cuts a single-loop unrolling wider
    than its dimension to the dimension's size (its shipped eyeriss_like/default.yaml pair unrolls K 32 on a
    14-wide D1) and costs that: such an entry is allowed and returned as a one-line warning naming it. A
    product of several loops wider than its dimension is refused (ZigZag does not cut it). Unrollings that do
    not divide the dimension are allowed (ZigZag costs them as partly idle arrays)."""
    array = accelerator.get("operational_array") or {}
    sizes = dict(zip(array.get("dimensions") or [], array.get("sizes") or [], strict=False))
    if not sizes:
        return []
    warnings = []
    for index, entry in enumerate(mapping):
        where = f"[{index}] ({entry.get('name')}).spatial_mapping"
        for array_dim, factors in (entry.get("spatial_mapping") or {}).items():
            if array_dim not in sizes:
                raise CodesignError(
                    f"{path}: {where}.{array_dim}: expected one of the accelerator's array dimensions "
                    f"{list(sizes)}"
                )
            unrolled = 1
            for factor in factors:
                _, _, size = str(factor).partition(",")
                try:
                    unrolled *= int(size.strip())
                except ValueError:
                    raise CodesignError(
                        f"{path}: {where}.{array_dim}: expected 'LOOP, size' entries, got {factor!r}"
                    ) from None
            width = int(sizes[array_dim])
            if unrolled > width and len(factors) == 1:
                loop = str(factors[0]).partition(",")[0].strip()
                warnings.append(
                    f"{path}: {where}.{array_dim}: unrolls {loop} {unrolled} on an array dimension of size "
                    f"{width}; costed as ZigZag costs it, cut to {loop} {width}"
                )
            elif unrolled > width:
                raise CodesignError(
                    f"{path}: {where}.{array_dim}: expected an unrolling of at most the array's "
                    f"{array_dim} size {width}, got {' x '.join(map(str, factors))} = {unrolled} (ZigZag cuts "
                    "only a single loop to the array); reduce it, or enlarge operational_array.sizes"
                )
    return warnings


def capped_mapping_file(accelerator: Path, mapping: Path, folder: Path) -> Path:
    """`mapping` as ZigZag uses it on `accelerator`: each single-loop unrolling wider than its array dimension
    cut to the dimension's size (ZigZag does so with a warning in its log; `check_mapping_fits` warns).
    A copy in `folder` if anything was cut, else `mapping` itself; for comparisons with ZigZag on its own
    shipped files."""
    array = yaml.safe_load(accelerator.read_text())["operational_array"]
    sizes = dict(zip(array["dimensions"], array["sizes"], strict=True))
    entries = yaml.safe_load(mapping.read_text())
    cut = False
    for entry in entries:
        for array_dim, factors in (entry.get("spatial_mapping") or {}).items():
            loop, _, size = str(factors[0]).partition(",")
            if len(factors) == 1 and array_dim in sizes and int(size) > int(sizes[array_dim]):
                entry["spatial_mapping"][array_dim] = [f"{loop.strip()}, {sizes[array_dim]}"]
                cut = True
    if not cut:
        return mapping
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / mapping.name
    path.write_text(yaml.safe_dump(entries))
    return path
