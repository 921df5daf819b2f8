"""The `search:` section of a workload (and the command line's overrides of it)."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from codesign.config.fields import known_keys, section, str_list
from codesign.errors import input_error
from codesign.search.algorithms import ALGORITHMS
from codesign.search.objectives import OBJECTIVES
from codesign.search.settings import (
    BASELINES,
    Constraints,
    SearchSettings,
    SurrogateSettings,
    default_surrogate,
)
from codesign.search.surrogate import PREDICTORS


def parse_search(
    source: str, search_data: dict[str, Any], base: SearchSettings | None = None
) -> SearchSettings:
    """The `search:` section of a workload (or command-line overrides of it, applied to `base`)."""
    known_keys(
        source,
        "search.",
        search_data,
        {
            "population",
            "generations",
            "seed",
            "objectives",
            "algorithm",
            "constraints",
            "surrogate",
            "baseline",
        },
    )
    search = base or SearchSettings()
    for key in ("population", "generations", "seed"):
        if key in search_data:
            value = search_data[key]
            if not isinstance(value, int) or value < (0 if key == "seed" else 1):
                raise input_error(source, f"search.{key}", "a positive integer", value)
            search = replace(search, **{key: value})
    if "objectives" in search_data:
        objectives = search_data["objectives"]
        if (
            not isinstance(objectives, list)
            or "accuracy" not in objectives
            or not set(objectives) <= set(OBJECTIVES)
            or len(objectives) < 2
        ):
            raise input_error(
                source,
                "search.objectives",
                f"'accuracy' plus at least one of {[n for n in OBJECTIVES if n != 'accuracy']}",
                objectives,
            )
        search = replace(search, objectives=tuple(objectives))
    if "algorithm" in search_data:
        if search_data["algorithm"] not in ALGORITHMS:
            raise input_error(
                source, "search.algorithm", f"one of {list(ALGORITHMS)}", search_data["algorithm"]
            )
        search = replace(search, algorithm=search_data["algorithm"])
    if "baseline" in search_data:
        baseline = search_data["baseline"]
        if baseline is not None and baseline not in BASELINES:
            raise input_error(source, "search.baseline", f"one of {list(BASELINES)} or null", baseline)
        search = replace(search, baseline=baseline)
    if "constraints" in search_data:
        search = replace(
            search,
            constraints=_constraints(
                source,
                {
                    **asdict(search.constraints),
                    **section(
                        source, {"search.constraints": search_data["constraints"]}, "search.constraints"
                    ),
                },
            ),
        )
    if "surrogate" in search_data:
        search = replace(search, surrogate=_surrogate(source, search_data["surrogate"], search))
    elif search.surrogate is not None and ({"population", "generations"} & set(search_data)):
        # a new population or generation count on the command line moves the surrogate's budget with it
        search = replace(
            search, surrogate=search.surrogate.with_budget(search.population * search.generations)
        )
    return search


def _constraints(source: str, data: dict[str, Any]) -> Constraints:
    known_keys(
        source,
        "search.constraints.",
        data,
        {
            "min_accuracy",
            "max_latency_ms",
            "max_energy_uj",
            "max_exit_overhead_uj",
            "max_area",
            "weights_on_chip",
        },
    )
    values: dict[str, Any] = {}
    for key in ("min_accuracy", "max_latency_ms", "max_energy_uj", "max_exit_overhead_uj", "max_area"):
        if data.get(key) is None:
            continue
        value = data[key]
        limit_ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        if not limit_ok or (key == "min_accuracy" and value >= 1):
            what = "a fraction in (0, 1), e.g. 0.9" if key == "min_accuracy" else "a positive number"
            raise input_error(source, f"search.constraints.{key}", what, value)
        values[key] = float(value)
    if "weights_on_chip" in data:
        if not isinstance(data["weights_on_chip"], bool):
            raise input_error(
                source, "search.constraints.weights_on_chip", "true or false", data["weights_on_chip"]
            )
        values["weights_on_chip"] = data["weights_on_chip"]
    return Constraints(**values)


def _surrogate(source: str, value: Any, search: SearchSettings) -> SurrogateSettings | None:
    if value is False or value is None:
        return None
    if value is True:
        return default_surrogate(search)
    data = section(source, {"search.surrogate": value}, "search.surrogate")
    known_keys(source, "search.surrogate.", data, {"initial", "per_iteration", "iterations", "predictors"})
    settings = default_surrogate(search)
    for key, minimum in (("initial", 4), ("per_iteration", 1), ("iterations", 1)):
        if key in data:
            if not isinstance(data[key], int) or isinstance(data[key], bool) or data[key] < minimum:
                raise input_error(source, f"search.surrogate.{key}", f"an integer >= {minimum}", data[key])
            settings = replace(settings, **{key: data[key]})
    if "predictors" in data:
        settings = replace(
            settings,
            predictors=str_list(source, "search.surrogate.predictors", data["predictors"], PREDICTORS.names),
        )
    return settings
