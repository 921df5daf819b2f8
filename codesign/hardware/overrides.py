"""Changing accelerator fields by dotted path (`--hw`, `hardware.overrides`, searched hardware genes), and
keeping the spatial mapping in step with a resized MAC array."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml

from codesign.errors import CodesignError

METADATA_KEY = "codesign"  # the accelerator file's own section, removed before ZigZag sees the file


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
        return math.isfinite(value)
    return isinstance(value, list) and bool(value) and all(_is_numeric(v) for v in value)


def _shape(value: Any) -> Any:
    """A number's shape is None; a list's is the list of its items' shapes (sizes of an array must stay a list)."""
    return [_shape(v) for v in value] if isinstance(value, list) else None


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
                f"{source}: {path}: expected a numeric field and a finite numeric value, got {value!r}"
            )
        if exists and _shape(node[last]) != _shape(value):
            raise CodesignError(
                f"{source}: {path}: expected a value shaped like the field's {node[last]!r}, got {value!r}"
            )
        node[last] = value
    return data


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
