"""Field validators for workload YAML: each returns the typed value or raises a one-line `CodesignError`
naming the file (`source`), the dotted field and what was expected."""

from __future__ import annotations

import math
from typing import Any

from codesign.errors import input_error


def int_list(
    source: str, field_name: str, value: Any, allowed: tuple[int, ...] | None = None, minimum: int = 1
) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in items):
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise input_error(source, field_name, f"{what} or a non-empty list of them", value)
    if allowed is not None and any(v not in allowed for v in items):
        raise input_error(source, field_name, f"values among {list(allowed)}", value)
    return tuple(items)


def str_list(source: str, field_name: str, value: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v in allowed for v in items):
        raise input_error(source, field_name, f"one or a list of {list(allowed)}", value)
    return tuple(items)


def dataclass_section(
    source: str, field_name: str, value: Any, cls: type, positive: frozenset[str] = frozenset()
) -> Any:
    """A settings dataclass of numbers from a mapping: every key a field, every value a finite number of
    the field's type, non-negative, and above zero for the fields in `positive`."""
    if value is None:
        return cls()
    if not isinstance(value, dict):
        raise input_error(
            source, field_name, f"a mapping with keys among {sorted(cls.__dataclass_fields__)}", value
        )
    known_keys(source, f"{field_name}.", value, set(cls.__dataclass_fields__))
    defaults = cls()
    for key, given in value.items():
        expected = type(getattr(defaults, key))
        bound = "positive" if key in positive else "non-negative"
        if not is_number(given) or given < 0 or (key in positive and given == 0):
            raise input_error(source, f"{field_name}.{key}", f"a finite {bound} {expected.__name__}", given)
        if expected is int and not float(given).is_integer():
            raise input_error(source, f"{field_name}.{key}", f"a {bound} integer", given)
    return cls(**{k: type(getattr(defaults, k))(v) for k, v in value.items()})


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def section(source: str, data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {}) or {}
    if not isinstance(value, dict):
        raise input_error(source, name, "a mapping", value)
    return value


def known_keys(source: str, prefix: str, value: dict[str, Any], known: set[str]) -> None:
    for key in value:
        if key not in known:
            raise input_error(source, f"{prefix}{key}", f"one of {sorted(known)}", key)
