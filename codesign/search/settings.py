"""Typed settings of the search step: population, objectives, algorithm, constraints and surrogate.

Names of objectives, algorithms and predictors are keys of their registries (`codesign.search.objectives`,
`codesign.search.algorithms`, `codesign.search.surrogate`); the workload parser checks them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from codesign.search.surrogate import PREDICTORS

DEFAULT_OBJECTIVES = ("accuracy", "energy", "latency")
BASELINES = ("static",)


@dataclass(frozen=True)
class Constraints:
    """Hard limits a returned network must meet (checked on validation figures, like the objectives)."""

    min_accuracy: float | None = None  # validation accuracy with early exits active, as a fraction
    max_latency_ms: float | None = None  # worst-case latency over the exits taken: the real-time budget
    max_energy_uj: float | None = None  # expected energy per inference
    weights_on_chip: bool = False  # all weights (at their bit widths) fit the accelerator's on-chip memories
    max_exit_overhead_uj: float | None = None  # expected energy in exit heads inputs went past, per inference
    max_area: float | None = None  # chip area of the accelerator variant (its file's area unit)

    @property
    def active(self) -> tuple[str, ...]:
        names = [
            n
            for n in ("min_accuracy", "max_latency_ms", "max_energy_uj", "max_exit_overhead_uj", "max_area")
            if getattr(self, n) is not None
        ]
        return (*names, "weights_on_chip") if self.weights_on_chip else tuple(names)


@dataclass(frozen=True)
class SurrogateSettings:
    """Surrogate-assisted search: an archive of `initial` real evaluations, then `iterations` rounds of
    predictors (chosen per objective by cross-validated Kendall tau) -> NSGA-II on the predictions ->
    the `per_iteration` most promising unseen candidates evaluated for real."""

    initial: int = 12
    per_iteration: int = 6
    iterations: int = 8
    predictors: tuple[str, ...] = PREDICTORS.names

    @property
    def budget(self) -> int:
        return self.initial + self.iterations * self.per_iteration

    def with_budget(self, candidates: int) -> SurrogateSettings:
        """As many rounds as fit `candidates` after the initial archive (at least one)."""
        return replace(self, iterations=max(1, (candidates - self.initial) // self.per_iteration))


@dataclass(frozen=True)
class SearchSettings:
    population: int = 12
    generations: int = 5
    seed: int = 0
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    algorithm: str = "nsga2"
    constraints: Constraints = field(default_factory=Constraints)
    surrogate: SurrogateSettings | None = None  # None: the algorithm evaluates every candidate for real
    # "static": also search the same space with every exit off, as the baseline (see `runs.baseline`)
    baseline: str | None = None

    @property
    def budget(self) -> int:
        """Candidates the search asks for (real evaluations at most; repeats come from the run store)."""
        return self.surrogate.budget if self.surrogate else self.population * self.generations

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSettings:
        """Inverse of `dataclasses.asdict` (a run's stored configuration)."""
        surrogate = data.get("surrogate")
        return cls(
            population=data["population"],
            generations=data["generations"],
            seed=data["seed"],
            objectives=tuple(data["objectives"]),
            algorithm=data.get("algorithm", "nsga2"),
            constraints=Constraints(**data.get("constraints", {})),
            surrogate=SurrogateSettings(**{**surrogate, "predictors": tuple(surrogate["predictors"])})
            if surrogate
            else None,
            baseline=data.get("baseline"),
        )


def default_surrogate(search: SearchSettings) -> SurrogateSettings:
    """Surrogate settings with the same budget of candidates as `population` x `generations` of the algorithm."""
    settings = SurrogateSettings(max(4, search.population), max(2, search.population // 2), 1)
    return settings.with_budget(search.population * search.generations)
