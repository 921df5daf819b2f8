"""pymoo algorithms for the integer genome, by name: the registry `ALGORITHMS` (`search.algorithm`).

Every algorithm gets integer sampling, uniform crossover and reset mutation, with duplicates removed.
An entry is a builder `(population, number of objectives, seed, operators) -> pymoo Algorithm`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from codesign.registry import Registry

Builder = Callable[[int, int, int, dict[str, Any]], Any]
ALGORITHMS: Registry[Builder] = Registry("search algorithm")


def _reference_directions(n_obj: int, population: int, seed: int) -> Any:
    from pymoo.util.ref_dirs import get_reference_directions

    return get_reference_directions("energy", n_obj, max(population, n_obj + 1), seed=seed)


@ALGORITHMS.register("nsga2")
def _nsga2(population: int, n_obj: int, seed: int, operators: dict[str, Any]) -> Any:
    from pymoo.algorithms.moo.nsga2 import NSGA2

    return NSGA2(pop_size=population, **operators)


@ALGORITHMS.register("nsga3")
def _nsga3(population: int, n_obj: int, seed: int, operators: dict[str, Any]) -> Any:
    from pymoo.algorithms.moo.nsga3 import NSGA3

    return NSGA3(ref_dirs=_reference_directions(n_obj, population, seed), pop_size=population, **operators)


@ALGORITHMS.register("unsga3")
def _unsga3(population: int, n_obj: int, seed: int, operators: dict[str, Any]) -> Any:
    from pymoo.algorithms.moo.unsga3 import UNSGA3

    return UNSGA3(ref_dirs=_reference_directions(n_obj, population, seed), pop_size=population, **operators)


@ALGORITHMS.register("ctaea")
def _ctaea(population: int, n_obj: int, seed: int, operators: dict[str, Any]) -> Any:
    """Constrained two-archive EA: the population is the number of reference directions."""
    from pymoo.algorithms.moo.ctaea import CTAEA

    return CTAEA(ref_dirs=_reference_directions(n_obj, population, seed), **operators)


@ALGORITHMS.register("smsemoa")
def _smsemoa(population: int, n_obj: int, seed: int, operators: dict[str, Any]) -> Any:
    from pymoo.algorithms.moo.sms import SMSEMOA

    return SMSEMOA(pop_size=population, **operators)


@ALGORITHMS.register("spea2")
def _spea2(population: int, n_obj: int, seed: int, operators: dict[str, Any]) -> Any:
    from pymoo.algorithms.moo.spea2 import SPEA2

    return SPEA2(pop_size=population, **operators)


def make_algorithm(name: str, population: int, n_obj: int, seed: int, sampling: Any = None) -> Any:
    """The registered algorithm `name` with codesign's operators for the integer genome (`sampling`: the
    first population's, default uniformly random)."""
    from pymoo.operators.crossover.ux import UX
    from pymoo.operators.sampling.rnd import IntegerRandomSampling

    from codesign.search.operators import ResetMutation

    operators = dict(
        sampling=sampling or IntegerRandomSampling(),
        crossover=UX(),
        mutation=ResetMutation(),
        eliminate_duplicates=True,
    )
    return ALGORITHMS[name](population, n_obj, seed, operators)
