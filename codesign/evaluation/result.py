"""The record of one evaluated candidate: measured exit statistics, per-exit and expected costs.

It is what the evaluator returns, the search ranks, the run store keeps (as JSON) and the reports show.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from codesign.cost.records import ExitCost, ExpectedCost
from codesign.exits import ExitStats
from codesign.spec import CandidateSpec


@dataclass(frozen=True)
class CandidateResult:
    """Everything measured for one candidate. Validation figures drive the search; test figures are reported."""

    spec: CandidateSpec
    val: ExitStats
    test: ExitStats | None  # None: not evaluated on the test split (only returned networks always are)
    exits: tuple[ExitCost, ...]  # per active exit, final last
    expected_val: ExpectedCost
    expected_test: ExpectedCost | None
    static: ExitCost  # the same backbone with only the final classifier
    static_val_accuracy: float
    static_test_accuracy: float | None
    accelerator: str = ""
    clock_hz: float = 1e9
    weight_bytes: float = 0.0  # the candidate network's weights at their bit widths
    weight_capacity_bytes: float | None = None  # on-chip memory that can hold weights (all cores)
    # Weights resident on chip (see `cost.residency`): their one-time load from off chip, not per inference.
    weight_load_energy_pj: float | None = None
    weight_load_cycles: float | None = None
    # Weight bytes kept in the on-chip weight memories and streamed from off chip whenever their layer runs
    # (partial residency, see `cost.residency`); None in run stores written before it.
    weight_bytes_on_chip: float | None = None
    weight_bytes_streamed: float | None = None
    # The validation exit fractions the residency plan chose its on-chip weights by (None: every layer counted
    # as running, the plan used when all weights fit or before exit statistics)
    residency_fractions: tuple[float, ...] | None = None
    # After the final quantization-aware fine-tuning: the test/validation accuracy it started from.
    test_accuracy_before_finetune: float | None = None
    val_accuracy_before_finetune: float | None = None
    # After the final fine-tuning but with the thresholds the search chose (before re-tuning them): the
    # change from `test_accuracy_before_finetune` is the fine-tuning's alone.
    test_accuracy_finetuned_search_thresholds: float | None = None
    # The oracle on test: the cheapest assignment of inputs to active exits that reaches the achieved test
    # accuracy (`exits.CachedExits.oracle`), a bound no policy can beat on this network at that accuracy;
    # None where the test split was not evaluated.
    oracle_test: ExitStats | None = None
    expected_oracle_test: ExpectedCost | None = None
    # The learned exit policy's fitted model (`exits.LearnedConfidence.to_dict`), for a candidate that uses it
    learned_policy: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # The accelerator variant's chip area from its file's area fields (None: the file states none, or stores
    # written before area was recorded)
    chip_area: float | None = None

    def seconds(self, cycles: float) -> float:
        return cycles / self.clock_hz

    def edp(self, expected: ExpectedCost | None = None) -> float:
        """Expected energy x expected latency, in J*s (test split if evaluated, else validation)."""
        expected = expected or self.expected_test or self.expected_val
        return expected.energy_pj * 1e-12 * self.seconds(expected.latency_cycles)

    @property
    def reported(self) -> tuple[ExitStats, ExpectedCost, float]:
        """(exit stats, expected cost, static accuracy) on the test split if evaluated, else validation."""
        if self.test is not None and self.expected_test is not None and self.static_test_accuracy is not None:
            return self.test, self.expected_test, self.static_test_accuracy
        return self.val, self.expected_val, self.static_val_accuracy

    @property
    def num_exits(self) -> int:
        return len(self.exits)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["spec"] = self.spec.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CandidateResult:
        return cls(
            spec=CandidateSpec.from_dict(data["spec"]),
            val=_stats(data["val"]),
            test=_stats(data["test"]) if data.get("test") else None,
            exits=tuple(ExitCost(**e) for e in data["exits"]),
            expected_val=ExpectedCost(**data["expected_val"]),
            expected_test=ExpectedCost(**data["expected_test"]) if data.get("expected_test") else None,
            static=ExitCost(**data["static"]),
            static_val_accuracy=data["static_val_accuracy"],
            static_test_accuracy=data["static_test_accuracy"],
            accelerator=data.get("accelerator", ""),
            clock_hz=data.get("clock_hz", 1e9),
            weight_bytes=data.get("weight_bytes", 0.0),
            weight_capacity_bytes=data.get("weight_capacity_bytes"),
            weight_load_energy_pj=data.get("weight_load_energy_pj"),
            weight_load_cycles=data.get("weight_load_cycles"),
            weight_bytes_on_chip=data.get("weight_bytes_on_chip"),
            weight_bytes_streamed=data.get("weight_bytes_streamed"),
            residency_fractions=tuple(data["residency_fractions"])
            if data.get("residency_fractions")
            else None,
            test_accuracy_before_finetune=data.get("test_accuracy_before_finetune"),
            val_accuracy_before_finetune=data.get("val_accuracy_before_finetune"),
            test_accuracy_finetuned_search_thresholds=data.get("test_accuracy_finetuned_search_thresholds"),
            oracle_test=_stats(data["oracle_test"]) if data.get("oracle_test") else None,
            learned_policy=data.get("learned_policy"),
            expected_oracle_test=ExpectedCost(**data["expected_oracle_test"])
            if data.get("expected_oracle_test")
            else None,
            timings=dict(data.get("timings", {})),
            chip_area=data.get("chip_area"),
        )


def _stats(data: dict[str, Any]) -> ExitStats:
    return ExitStats(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
