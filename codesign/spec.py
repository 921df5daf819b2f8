"""Candidate specifications: the typed, hashable, serialisable description of one early-exit network."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from codesign.exits import DEFAULT_POLICY, POLICIES

# Short forms of the built-in block types in `describe` (display only: any other block shows its name;
# the block types themselves are the registry `codesign.network.blocks.BLOCKS`).
_BLOCK_LABELS = {"conv": "", "mbconv": "mb{expansion}", "basic": "res"}


@dataclass(frozen=True)
class StageSpec:
    """One backbone stage: `depth` blocks of `width` output channels; the first block applies `stride`.

    Blocks: `conv` (conv-BN-ReLU), `mbconv` (MobileNetV2 inverted residual: 1x1 expansion by
    `expansion`, depthwise `kernel`, linear 1x1 projection, residual when shapes allow), `basic`
    (ResNet basic block: two `kernel` convs with an identity or 1x1 shortcut).
    """

    depth: int
    width: int
    kernel: int
    stride: int
    weight_bits: int
    act_bits: int
    block: str = "conv"
    expansion: int = 1


@dataclass(frozen=True)
class ExitBranch:
    """An exit head (AEBNAS-style): `convs` conv-BN-ReLU layers of `channels` and `kernel`, the first
    with `stride`, average pooling to a `pool` x `pool` grid, then a linear classifier.

    A stride-2 first conv makes a conv head affordable right after an early, high-resolution stage
    (a quarter of the MACs), where a stride-1 one would cost as much as the next backbone stage."""

    convs: int = 0
    channels: int = 16
    kernel: int = 3
    pool: int = 2
    # Out of the repr, which keys cached supernets (see `supernet.supernet_key`).
    stride: int = field(default=1, repr=False)
    # The head's own weight / activation bit widths (None: its stage's), as Zniber et al. search them;
    # out of the repr too: the float supernet does not depend on them.
    weight_bits: int | None = field(default=None, repr=False)
    act_bits: int | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CandidateSpec:
    """An early-exit network.

    `exits[i]` switches on the exit head placed after stage i (i < number of stages - 1); the final
    classifier after the last stage is always on. `thresholds[i]` is the confidence threshold of exit i
    under `policy` (of its temperature-scaled logits): an input leaves there when its confidence is at least
    that value. A searched network carries `exit_fractions` instead, turned into thresholds on validation.
    """

    stages: tuple[StageSpec, ...]
    exits: tuple[bool, ...]
    thresholds: tuple[float, ...]
    num_classes: int
    in_channels: int
    resolution: int
    # Exit head after each stage (the last one is the final classifier); () = default branches.
    branches: tuple[ExitBranch, ...] = ()
    policy: str = DEFAULT_POLICY
    # Accelerator parameters set by this candidate: (dotted field, JSON value), sorted by field.
    hardware: tuple[tuple[str, str], ...] = ()
    # Multi-core allocation: core of each backbone stage and of the exit head after each stage; () = one core.
    stage_cores: tuple[int, ...] = ()
    head_cores: tuple[int, ...] = ()
    # Validation accuracy that threshold tuning may give up for this candidate; None: the workload's default.
    accuracy_drop: float | None = None
    # Searched target fraction of the inputs reaching each early exit that leave there (1.0 where the exit is
    # off); the evaluator turns them into `thresholds` on validation confidences. (): thresholds as given.
    exit_fractions: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if len(self.exits) != len(self.stages) - 1:
            raise ValueError(f"exits must have {len(self.stages) - 1} entries, got {len(self.exits)}")
        if len(self.thresholds) != len(self.exits):
            raise ValueError("thresholds must have one entry per early exit")
        if self.branches and len(self.branches) != len(self.stages):
            raise ValueError(
                f"branches must have {len(self.stages)} entries (one per stage), got {len(self.branches)}"
            )
        if self.exit_fractions and len(self.exit_fractions) != len(self.exits):
            raise ValueError("exit_fractions must have one entry per early exit")
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {list(POLICIES)}, got {self.policy!r}")

    def branch(self, stage_index: int) -> ExitBranch:
        return self.branches[stage_index] if self.branches else ExitBranch()

    def head_bits(self, stage_index: int) -> tuple[int, int]:
        """(weight bits, activation bits) of the exit head after a stage: its own, else its stage's."""
        branch, stage = self.branch(stage_index), self.stages[stage_index]
        return (
            branch.weight_bits if branch.weight_bits is not None else stage.weight_bits,
            branch.act_bits if branch.act_bits is not None else stage.act_bits,
        )

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def active_exit_stages(self) -> tuple[int, ...]:
        """Indices of the stages after which an exit is evaluated, final classifier included."""
        early = tuple(i for i, on in enumerate(self.exits) if on)
        return (*early, self.num_stages - 1)

    @property
    def active_thresholds(self) -> tuple[float, ...]:
        return tuple(t for t, on in zip(self.thresholds, self.exits, strict=True) if on)

    @property
    def active_exit_fractions(self) -> tuple[float, ...]:
        """The searched target fractions of the active early exits (() when thresholds are given)."""
        if not self.exit_fractions:
            return ()
        return tuple(f for f, on in zip(self.exit_fractions, self.exits, strict=True) if on)

    def architecture(self) -> CandidateSpec:
        """The same network with every exit head present and neutral thresholds.

        Candidates that differ only in which exits are on and in thresholds share one architecture,
        so they share trained weights and cached exit logits.
        Accelerator parameters and core allocation do not change the network either.
        """
        return CandidateSpec(
            stages=self.stages,
            exits=tuple(True for _ in self.exits),
            thresholds=tuple(1.0 for _ in self.thresholds),
            num_classes=self.num_classes,
            in_channels=self.in_channels,
            resolution=self.resolution,
            branches=self.branches,
        )

    def with_hardware(self, overrides: dict[str, object]) -> CandidateSpec:
        """The same network on the accelerator with these fields changed (dotted paths, as in `--hw`)."""
        return replace(
            self, hardware=tuple(sorted((path, json.dumps(value)) for path, value in overrides.items()))
        )

    def hardware_overrides(self) -> dict[str, object]:
        return {path: json.loads(value) for path, value in self.hardware}

    def without_early_exits(self) -> CandidateSpec:
        """The static counterpart: the same backbone with only the final classifier."""
        return replace(self, exits=tuple(False for _ in self.exits))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["accuracy_drop"] is None:  # keeps the keys of specs without a searched drop unchanged
            del data["accuracy_drop"]
        if not data["exit_fractions"]:  # likewise for thresholds given or tuned
            del data["exit_fractions"]
        for branch in data["branches"]:  # likewise for heads without a strided conv or their own bits
            if branch["stride"] == 1:
                del branch["stride"]
            for bits in ("weight_bits", "act_bits"):
                if branch[bits] is None:
                    del branch[bits]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CandidateSpec:
        return cls(
            stages=tuple(StageSpec(**s) for s in data["stages"]),
            branches=tuple(ExitBranch(**b) for b in data.get("branches", ())),
            policy=str(data.get("policy", DEFAULT_POLICY)),
            exits=tuple(bool(e) for e in data["exits"]),
            thresholds=tuple(float(t) for t in data["thresholds"]),
            num_classes=int(data["num_classes"]),
            in_channels=int(data["in_channels"]),
            resolution=int(data["resolution"]),
            hardware=tuple((str(k), str(v)) for k, v in data.get("hardware", ())),
            stage_cores=tuple(int(c) for c in data.get("stage_cores", ())),
            head_cores=tuple(int(c) for c in data.get("head_cores", ())),
            accuracy_drop=data.get("accuracy_drop"),
            exit_fractions=tuple(float(f) for f in data.get("exit_fractions", ())),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def key(self) -> str:
        """A stable short identifier (hash of the canonical JSON)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def describe(self) -> str:
        """Compact human-readable form, e.g. `d1w16k3 | d2w32k3 | d1w64k3` with bit widths."""
        parts = []
        for s in self.stages:
            block = _BLOCK_LABELS.get(s.block, s.block).format(expansion=s.expansion)
            parts.append(f"{block}d{s.depth}w{s.width}k{s.kernel}/W{s.weight_bits}A{s.act_bits}")
        return " | ".join(parts)

    def describe_exits(self) -> str:
        """e.g. `0:c1x32k3s2p2 1:p2 @score_margin` (`s2`: a stride-2 first conv)."""
        parts = []
        for i in self.active_exit_stages:
            b = self.branch(i)
            stride = f"s{b.stride}" if b.stride != 1 else ""
            bits = ""
            if b.weight_bits is not None or b.act_bits is not None:
                w, a = self.head_bits(i)
                bits = f"/W{w}A{a}"
            parts.append(
                (f"{i}:c{b.convs}x{b.channels}k{b.kernel}{stride}p{b.pool}" if b.convs else f"{i}:p{b.pool}")
                + bits
            )
        drop = f" drop<={100 * self.accuracy_drop:g}%" if self.accuracy_drop is not None else ""
        return " ".join(parts) + f" @{self.policy}" + drop

    def describe_hardware(self) -> str:
        parts = [f"{path}={value}" for path, value in self.hardware]
        if self.stage_cores:
            cores = " ".join(f"S{i}:c{s}" for i, s in enumerate(self.stage_cores))
            heads = " ".join(f"H{i}:c{self.head_cores[i]}" for i in self.active_exit_stages)
            parts.append(f"cores {cores} {heads}")
        return "; ".join(parts)
