"""Registries: one per extension point, each the only list of its names.

`codesign` has six extension points, each with one registry beside its implementations:

| extension point | registry | where |
|---|---|---|
| exit policy (confidence of an exit's logits) | `POLICIES` | `codesign.exits` |
| dataset | `DATASETS` | `codesign.data.registry` |
| backbone block | `BLOCKS` | `codesign.network.blocks` |
| objective | `OBJECTIVES` | `codesign.search.objectives` |
| search algorithm | `ALGORITHMS` | `codesign.search.algorithms` |
| surrogate predictor | `PREDICTORS` | `codesign.search.surrogate` |

Adding an implementation means adding one entry (or one `@REGISTRY.register("name")` decorator) beside it:
the workload parser accepts exactly a registry's keys, the command line offers them, and nothing else lists
them. Registries never import PyTorch, so a workload is read and checked without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

T = TypeVar("T")


class Registry(Mapping[str, T]):
    """Name -> implementation for one extension point (`kind`, e.g. "dataset"), in registration order."""

    def __init__(self, kind: str, entries: Mapping[str, T] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        for name, implementation in (entries or {}).items():
            self.add(name, implementation)

    def add(self, name: str, implementation: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = implementation
        return implementation

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`: `@ALGORITHMS.register("nsga2")`."""
        return lambda implementation: self.add(name, implementation)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}: expected one of {list(self._entries)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"
