"""The search space: per-gene choices of stages, exit branches, policies, thresholds, hardware and cores,
and the decoding of an integer genome into a `CandidateSpec`."""

from __future__ import annotations

import itertools
import json
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from functools import cached_property
from typing import Any

from codesign.spec import CandidateSpec, ExitBranch, StageSpec


@dataclass(frozen=True)
class StageChoices:
    depth: tuple[int, ...]
    width: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: int
    weight_bits: tuple[int, ...]
    act_bits: tuple[int, ...]
    block: tuple[str, ...] = ("conv",)
    expansion: tuple[int, ...] = (1,)


@dataclass(frozen=True)
class BranchChoices:
    """Choices for every early exit's branch (AEBNAS-style)."""

    convs: tuple[int, ...] = (0,)
    channels: tuple[int, ...] = (16,)
    kernel: tuple[int, ...] = (3,)
    pool: tuple[int, ...] = (2,)
    # Stride of a conv head's first conv. Left out of the repr, which keys cached supernets: spaces
    # without strided heads keep the supernets they already trained (see `supernet.supernet_key`).
    stride: tuple[int, ...] = field(default=(1,), repr=False)
    # Exit heads' own bit widths; () = their stage's (no gene). Out of the repr for the same reason.
    weight_bits: tuple[int, ...] = field(default=(), repr=False)
    act_bits: tuple[int, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Gene:
    """One decision variable: an index into `choices`."""

    name: str
    choices: tuple[Any, ...]


@dataclass(frozen=True)
class SearchSpace:
    stages: tuple[StageChoices, ...]
    # Choices of each early exit's target fraction: of the validation inputs that reach the exit, the share
    # that leaves there (the evaluator places the threshold inside the exit's own confidences).
    exit_fractions: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)
    num_classes: int = 10
    in_channels: int = 1
    resolution: int = 8
    # Accelerator fields searched with the network: (dotted path, choices).
    hardware: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    # Cores to allocate stages and exit heads over (1: single core, no allocation genes).
    cores: int = 1
    branches: BranchChoices = field(default_factory=BranchChoices)
    final_branch: ExitBranch = field(default_factory=ExitBranch)
    policies: tuple[str, ...] = ("score_margin",)
    resolutions: tuple[int, ...] = ()  # input resolutions to search; () = the dataset's
    # Thresholds tuned per candidate on validation (AEBNAS-style) instead of searched as genes.
    tune_thresholds: bool = False
    # Validation accuracy the tuned thresholds may give up against the final exit; more than one value:
    # a searched gene, so the search can also return early-exit networks that match static accuracy.
    accuracy_drops: tuple[float, ...] = (0.01,)
    # One-sided confidence with which the tuned thresholds must keep the accuracy drop on unseen inputs
    # (0: on the validation split itself); see `exits.tune_thresholds`.
    tuning_confidence: float = 0.0
    # What the drop is measured against: "final" (the final exit) or "best" (the most accurate the
    # network gets with its exits and policy); see `exits.tune_thresholds`.
    drop_reference: str = "final"
    # False: static networks only (every early exit off, no exit genes): the baseline an EENN front is
    # compared with, searched over the same backbones.
    early_exits: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSpace:
        """The space a run store recorded (`asdict` through JSON); fields added since take their defaults."""
        return _built(cls, data)

    @property
    def max_accuracy_drop(self) -> float:
        """The evaluator's default drop (the first choice)."""
        return self.accuracy_drops[0]

    @cached_property  # decoding asks for it once per candidate
    def genes(self) -> tuple[Gene, ...]:
        genes: list[Gene] = []
        if self.resolutions:
            genes.append(Gene("resolution", self.resolutions))
        for i, stage in enumerate(self.stages):
            for attr in ("block", "depth", "width", "kernel", "expansion", "weight_bits", "act_bits"):
                genes.append(Gene(f"stage{i}.{attr}", getattr(stage, attr)))
        for i in range(len(self.stages) - 1 if self.early_exits else 0):
            genes.append(Gene(f"exit{i}.on", (False, True)))
            if not self.tune_thresholds:
                genes.append(Gene(f"exit{i}.fraction", self.exit_fractions))
            for attr in ("convs", "channels", "kernel", "pool"):
                genes.append(Gene(f"exit{i}.{attr}", getattr(self.branches, attr)))
            if len(self.branches.stride) > 1:  # only then: the genomes of other spaces stay as they were
                genes.append(Gene(f"exit{i}.stride", self.branches.stride))
            for attr in ("weight_bits", "act_bits"):  # likewise: only spaces that give heads their own bits
                if getattr(self.branches, attr):
                    genes.append(Gene(f"exit{i}.{attr}", getattr(self.branches, attr)))
        if self.early_exits:
            genes.append(Gene("policy", self.policies))
        if self.early_exits and self.tune_thresholds and len(self.accuracy_drops) > 1:
            genes.append(Gene("accuracy_drop", self.accuracy_drops))
        for path, choices in self.hardware:
            genes.append(Gene(f"hw.{path}", choices))
        if self.cores > 1:
            for i in range(len(self.stages)):
                genes.append(Gene(f"core.stage{i}", tuple(range(self.cores))))
                genes.append(Gene(f"core.head{i}", tuple(range(self.cores))))
        return tuple(genes)

    def decode(self, indices: list[int] | tuple[int, ...]) -> CandidateSpec:
        genes = self.genes
        if len(indices) != len(genes):
            raise ValueError(f"expected {len(genes)} genes, got {len(indices)}")
        values = {g.name: g.choices[int(i) % len(g.choices)] for g, i in zip(genes, indices, strict=True)}
        stages = tuple(
            StageSpec(
                depth=values[f"stage{i}.depth"],
                width=values[f"stage{i}.width"],
                kernel=values[f"stage{i}.kernel"],
                stride=stage.stride,
                weight_bits=values[f"stage{i}.weight_bits"],
                act_bits=values[f"stage{i}.act_bits"],
                block=values[f"stage{i}.block"],
                expansion=values[f"stage{i}.expansion"] if values[f"stage{i}.block"] == "mbconv" else 1,
            )
            for i, stage in enumerate(self.stages)
        )
        early = range(len(self.stages) - 1)
        exits = tuple(values.get(f"exit{i}.on", False) for i in early)
        # A switched-off exit has no branch: the first choices keep equal networks equal specs.
        branches = tuple(
            ExitBranch(
                convs=values[f"exit{i}.convs"] if exits[i] else self.branches.convs[0],
                channels=values[f"exit{i}.channels"] if exits[i] else self.branches.channels[0],
                kernel=values[f"exit{i}.kernel"] if exits[i] else self.branches.kernel[0],
                pool=values[f"exit{i}.pool"] if exits[i] else self.branches.pool[0],
                stride=values.get(f"exit{i}.stride", self.branches.stride[0]) if exits[i] else 1,
                weight_bits=values.get(f"exit{i}.weight_bits") if exits[i] else None,
                act_bits=values.get(f"exit{i}.act_bits") if exits[i] else None,
            )
            for i in early
        ) + (self.final_branch,)
        branches = tuple(
            replace(b, channels=self.branches.channels[0], kernel=self.branches.kernel[0], stride=1)
            if b.convs == 0
            else b
            for b in branches[:-1]
        ) + (branches[-1],)
        hardware = tuple(sorted((path, json.dumps(values[f"hw.{path}"])) for path, _ in self.hardware))
        stage_cores: tuple[int, ...] = ()
        head_cores: tuple[int, ...] = ()
        if self.cores > 1:
            stage_cores = tuple(values[f"core.stage{i}"] for i in range(len(self.stages)))
            # a switched-off head has no core: 0 keeps equal networks equal specs
            head_cores = tuple(
                values[f"core.head{i}"] if i == len(self.stages) - 1 or exits[i] else 0
                for i in range(len(self.stages))
            )
        return CandidateSpec(
            stages=stages,
            exits=exits,
            # thresholds come from the fractions on validation (or tuning); 1.0 keeps equal networks equal specs
            thresholds=tuple(1.0 for _ in early),
            # a switched-off exit has no fraction gene: 1.0 likewise
            exit_fractions=()
            if self.tune_thresholds or not any(exits)
            else tuple(values[f"exit{i}.fraction"] if exits[i] else 1.0 for i in early),
            num_classes=self.num_classes,
            in_channels=self.in_channels,
            resolution=values.get("resolution", self.resolution),
            branches=branches,
            policy=values.get("policy", self.policies[0]),
            hardware=hardware,
            stage_cores=stage_cores,
            head_cores=head_cores,
            # without an early exit there is nothing to tune: None keeps equal networks equal specs
            accuracy_drop=values["accuracy_drop"] if "accuracy_drop" in values and any(exits) else None,
        )

    def encode(self, spec: CandidateSpec) -> tuple[int, ...] | None:
        """Gene indices that decode to a network with `spec`'s exits switched off and `spec`'s backbone,
        resolution, hardware and core allocation (the static network a seed stands for); None when this
        space cannot express it."""
        wanted: dict[str, Any] = {"resolution": spec.resolution}
        for i, stage in enumerate(spec.stages):
            for attr in ("block", "depth", "width", "kernel", "expansion", "weight_bits", "act_bits"):
                wanted[f"stage{i}.{attr}"] = getattr(stage, attr)
        hardware = dict(spec.hardware)
        for path, _ in self.hardware:
            wanted[f"hw.{path}"] = hardware.get(path)
        for i, core in enumerate(spec.stage_cores):
            wanted[f"core.stage{i}"] = core
        if spec.head_cores:
            wanted[f"core.head{len(spec.stages) - 1}"] = spec.head_cores[-1]
        indices = []
        for gene in self.genes:
            if gene.name not in wanted or len(gene.choices) == 1:
                indices.append(0)
                continue
            value = wanted[gene.name]
            matches = [
                k
                for k, choice in enumerate(gene.choices)
                if choice == value or (gene.name.startswith("hw.") and json.dumps(choice) == value)
            ]
            if not matches and gene.name.endswith(".expansion"):
                matches = [0]  # no expansion outside mbconv blocks: any choice decodes to 1
            if not matches:
                return None
            indices.append(matches[0])
        decoded = self.decode(indices)
        same = (decoded.stages, decoded.resolution, decoded.hardware, decoded.stage_cores) == (
            spec.stages,
            spec.resolution,
            spec.hardware,
            spec.stage_cores,
        )
        return tuple(indices) if same and not any(decoded.exits) else None

    def size(self) -> int:
        total = 1
        for gene in self.genes:
            total *= len(gene.choices)
        return total

    def all_indices(self) -> itertools.product:
        return itertools.product(*(range(len(g.choices)) for g in self.genes))


def _built(kind: Any, value: Any) -> Any:
    """`value` (JSON: lists for tuples, dicts for dataclasses) as the type `kind` says."""
    if is_dataclass(kind) and isinstance(value, dict):
        hints = typing.get_type_hints(kind)
        known = {f.name for f in fields(kind)}
        return kind(**{name: _built(hints[name], item) for name, item in value.items() if name in known})
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return value if value is None else _built(next(a for a in arguments if a is not type(None)), value)
    if origin is tuple and isinstance(value, list):
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return tuple(_built(arguments[0], item) for item in value)
        return tuple(_built(a, item) for a, item in zip(arguments, value, strict=True))
    return value
