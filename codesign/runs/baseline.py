"""Does early exit beat the best static network on this accelerator, and by how much?

A run with a static baseline (`explore --baseline`, `search.baseline: static`) also searches the same space
with every exit off, into `RUN/baseline/` (its own run store, the same data and layer-cost cache, its own
supernet: the early-exit search's backbone is the static one). Both fronts are the networks each search returned, chosen on
validation and measured on test after their final fine-tuning, as everywhere. At the static front's best
test accuracy (that of its most accurate network on validation) and at 0.5 and 1 point below it, the
cheapest network of each front that reaches the level is compared: early exit over static, in expected
energy and in expected latency. Early exit pays at a level only if test inputs actually leave the
early-exit front's cheapest network there early: a static network found by the early-exit search (its space
holds every static one), or one whose exit heads take no input, makes the static search's result look
beaten, not early exit.

A static network is an early-exit network with its exits off, so the early-exit side may always deploy the
static front's networks too: at each level its option set is its own front and the static front together,
and the early-exit side can never lose to the static one. (Both fronts are chosen on validation; an
early-exit network that ties its static twin there may lose a little on test, which without this would
read as early exit costing more than the static network it contains.)
"""

from __future__ import annotations

from dataclasses import dataclass

from codesign.evaluation.result import CandidateResult

BASELINE_FOLDER = "baseline"
LEVELS = (("static best", 0.0), ("best - 0.5 pt", 0.005), ("best - 1 pt", 0.01))


@dataclass(frozen=True)
class BaselineRow:
    """One accuracy level: the cheapest network of each front that reaches it, and their ratios."""

    level: str
    accuracy_at_least: float
    static_key: str | None
    static_energy_pj: float | None
    static_latency_s: float | None
    early_exit_key: str | None
    early_exit_energy_pj: float | None
    early_exit_latency_s: float | None
    # whether inputs leave that cheapest early-exit-front network early on test (heads no input takes do not
    # count: such a network is its static twin), and what share of the test inputs does
    early_exit_has_exits: bool | None = None
    early_exit_share: float | None = None

    @property
    def energy_ratio(self) -> float | None:
        if self.static_energy_pj and self.early_exit_energy_pj is not None:
            return self.early_exit_energy_pj / self.static_energy_pj
        return None

    @property
    def verdict(self) -> str:
        """Whether early exit pays at this level on this accelerator, and by how much (energy)."""
        ratio = self.energy_ratio
        if self.static_key is None:
            return "no static network reaches this level"
        if ratio is None:
            return "no early-exit network reaches this level"
        if ratio < 1 - 1e-9 and self.early_exit_has_exits is False:
            return (
                "early exit does not pay: the cheapest network here sends no input out early (a static one), "
                f"{100 * (1 - ratio):.0f}% cheaper than the static search found"
            )
        if ratio < 1 - 1e-9:
            share = (
                f", {100 * self.early_exit_share:.0f}% of inputs leave early" if self.early_exit_share else ""
            )
            return f"early exit pays: {100 * (1 - ratio):.0f}% less energy{share}"
        if self.early_exit_key is not None and ratio <= 1 + 1e-9:
            return "early exit does not pay: the cheapest network here is a static one"
        return f"early exit costs {ratio:.2f}x here (its front lost this level on test)"

    @property
    def latency_ratio(self) -> float | None:
        if self.static_latency_s and self.early_exit_latency_s is not None:
            return self.early_exit_latency_s / self.static_latency_s
        return None

    def row(self) -> dict[str, object]:
        return {
            **self.__dict__,
            "energy_ratio": self.energy_ratio,
            "latency_ratio": self.latency_ratio,
            "verdict": self.verdict,
        }


def _test_energy(result: CandidateResult) -> float:
    return result.expected_test.energy_pj if result.expected_test else result.expected_val.energy_pj


def _test_latency(result: CandidateResult) -> float:
    expected = result.expected_test or result.expected_val
    return result.seconds(expected.latency_cycles)


def _test_accuracy(result: CandidateResult) -> float:
    return result.test.accuracy if result.test else result.val.accuracy


def early_share(result: CandidateResult) -> float:
    """The share of (test, else validation) inputs that leave the network at an early exit."""
    stats = result.test or result.val
    return float(sum(stats.fractions[:-1]))


def compare_fronts(early_exit: list[CandidateResult], static: list[CandidateResult]) -> list[BaselineRow]:
    """The comparison at the three levels (see the module docstring); empty without static networks."""
    if not static:
        return []
    best_on_validation = max(static, key=lambda r: (r.val.accuracy, -r.expected_val.energy_pj))
    best = _test_accuracy(best_on_validation)
    rows = []
    for label, below in LEVELS:
        level = best - below
        reach_static = [r for r in static if _test_accuracy(r) >= level - 1e-12]
        # the static networks are early-exit networks with their exits off (see the module docstring)
        reach_early = [r for r in early_exit if _test_accuracy(r) >= level - 1e-12] + reach_static
        cheap_static = min(reach_static, key=_test_energy, default=None)
        cheap_early = min(reach_early, key=_test_energy, default=None)
        fast_static = min(reach_static, key=_test_latency, default=None)
        fast_early = min(reach_early, key=_test_latency, default=None)
        rows.append(
            BaselineRow(
                level=label,
                accuracy_at_least=level,
                static_key=cheap_static.spec.key() if cheap_static else None,
                static_energy_pj=_test_energy(cheap_static) if cheap_static else None,
                static_latency_s=_test_latency(fast_static) if fast_static else None,
                early_exit_key=cheap_early.spec.key() if cheap_early else None,
                early_exit_energy_pj=_test_energy(cheap_early) if cheap_early else None,
                early_exit_latency_s=_test_latency(fast_early) if fast_early else None,
                early_exit_has_exits=early_share(cheap_early) > 0 if cheap_early else None,
                early_exit_share=early_share(cheap_early) if cheap_early else None,
            )
        )
    return rows


def summary(rows: list[BaselineRow]) -> list[str]:
    if not rows:
        return ["static baseline: no static network was returned"]
    lines = [
        f"early exit against the static baseline (fronts chosen on validation, test figures): static best "
        f"{100 * rows[0].accuracy_at_least:.2f}%",
        f"{'level':>14} {'accuracy >=':>11} {'static nJ':>10} {'early-exit nJ':>13} {'energy':>7} {'latency':>8}  verdict",
    ]
    for r in rows:
        static = f"{r.static_energy_pj / 1e3:10.1f}" if r.static_energy_pj else f"{'-':>10}"
        early = f"{r.early_exit_energy_pj / 1e3:13.1f}" if r.early_exit_energy_pj else f"{'-':>13}"
        energy = f"{r.energy_ratio:7.2f}" if r.energy_ratio is not None else f"{'-':>7}"
        latency = f"{r.latency_ratio:8.2f}" if r.latency_ratio is not None else f"{'-':>8}"
        lines.append(
            f"{r.level:>14} {100 * r.accuracy_at_least:10.2f}% {static} {early} {energy} {latency}  {r.verdict}"
        )
    return lines
