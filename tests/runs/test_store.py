"""The run store keeps a run's data subset, and a resumed run loads the same subset again."""

from __future__ import annotations

import json

from codesign.config.workload import parse_workload
from codesign.data.splits import DataSubset
from codesign.runs.identity import differences
from codesign.runs.setup import prepare_run
from codesign.runs.store import RunConfig

WORKLOAD = {
    "dataset": "digits",
    "space": {"stages": [{"depth": 1, "width": 8, "stride": 1}, {"depth": 1, "width": 8, "stride": 2}]},
}


def test_a_subset_is_kept_in_the_config_and_changing_it_makes_another_run() -> None:
    whole = prepare_run(parse_workload(WORKLOAD, "w.yaml")).config()
    assert whole.data is None  # stores of whole-dataset runs read as before
    subset = prepare_run(parse_workload({**WORKLOAD, "data": {"train_images": 500}}, "w.yaml")).config()
    assert subset.data == DataSubset(train_images=500)
    again = RunConfig.from_dict(json.loads(json.dumps(subset.to_dict())))
    assert again == subset
    refused, _ = differences(whole, subset)
    assert any(line.startswith("data ") for line in refused), refused
    old_store = {
        key: value for key, value in whole.to_dict().items() if key != "data"
    }  # written before `data:`
    assert RunConfig.from_dict(json.loads(json.dumps(old_store))).data is None
