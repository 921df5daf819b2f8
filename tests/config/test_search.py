from __future__ import annotations

import pytest

from codesign.config.search import parse_search
from codesign.config.workload import parse_workload
from codesign.errors import CodesignError
from codesign.search.settings import SearchSettings

SPACE = {"stages": [{"depth": 1, "width": [8, 16], "stride": 1}, {"depth": 1, "width": 16, "stride": 2}]}


def test_search_section_parses_algorithm_constraints_and_surrogate():
    workload = parse_workload(
        {
            "space": SPACE,
            "search": {
                "population": 10,
                "generations": 4,
                "algorithm": "ctaea",
                "constraints": {"min_accuracy": 0.9, "max_latency_ms": 2, "weights_on_chip": True},
                "surrogate": {
                    "initial": 8,
                    "per_iteration": 3,
                    "iterations": 5,
                    "predictors": ["gp", "tree"],
                },
            },
        },
        "w.yaml",
    )
    search = workload.search
    assert search.algorithm == "ctaea"
    assert search.constraints.active == ("min_accuracy", "max_latency_ms", "weights_on_chip")
    assert search.surrogate.predictors == ("gp", "tree") and search.budget == 8 + 5 * 3
    # `surrogate: true` keeps the algorithm's budget of candidates
    plain = parse_workload(
        {"space": SPACE, "search": {"population": 10, "generations": 4, "surrogate": True}}, "w"
    )
    assert plain.search.surrogate.budget == 40 == SearchSettings(population=10, generations=4).budget
    # command-line overrides go through the same validation and merge with the file's constraints
    merged = parse_search("command line", {"constraints": {"max_energy_uj": 1.5}}, search)
    assert merged.constraints.min_accuracy == 0.9 and merged.constraints.max_energy_uj == 1.5
    assert SearchSettings.from_dict(__import__("dataclasses").asdict(merged)) == merged


@pytest.mark.parametrize(
    ("search", "field"),
    [
        ({"algorithm": "cmaes"}, "search.algorithm"),
        ({"constraints": {"min_accuracy": 90}}, "search.constraints.min_accuracy"),
        ({"constraints": {"weights_on_chip": "yes"}}, "search.constraints.weights_on_chip"),
        ({"constraints": {"max_ram": 3}}, "search.constraints.max_ram"),
        ({"surrogate": {"predictors": ["svm"]}}, "search.surrogate.predictors"),
        ({"surrogate": {"initial": 2}}, "search.surrogate.initial"),
        ({"surrogate": [1]}, "search.surrogate"),
    ],
)
def test_bad_search_settings_name_file_and_field(search, field):
    with pytest.raises(CodesignError) as error:
        parse_workload({"space": SPACE, "search": search}, "w.yaml")
    message = str(error.value)
    assert message.startswith(f"w.yaml: {field}") and "expected" in message and "\n" not in message
