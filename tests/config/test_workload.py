"""A workload's `quick:` budget (`--quick`) and its `data:` subset: parsed, checked, applied."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from codesign.cli.main import main
from codesign.config.workload import load_workload
from codesign.data.splits import DataSubset
from codesign.errors import CodesignError
from tests.test_space import write as write_text

STUDIES = ["aebnas_fmnist", "edanas_fmnist", "zniber_fmnist"]
SPACE = {"stages": [{"depth": 1, "width": 8, "stride": 1}, {"depth": 1, "width": 8, "stride": 2}]}


@pytest.mark.parametrize("name", STUDIES)
def test_each_study_has_a_quick_budget_on_a_subset_of_the_same_space(name: str) -> None:
    full, quick = load_workload(name), load_workload(name, quick=True)
    assert full.data.whole and not quick.data.whole
    assert quick.data == DataSubset(train_images=3000, val_images=1000, test_images=1000)
    assert quick.space == full.space and quick.search.objectives == full.search.objectives
    assert quick.supernet.epochs < full.supernet.epochs
    assert (
        quick.search.population * quick.search.generations < full.search.population * full.search.generations
    )
    assert quick.name.endswith("-quick") and not full.name.endswith("-quick")


def test_the_studies_say_what_they_reproduce() -> None:
    zniber, aebnas, edanas = (load_workload(n) for n in ("zniber_fmnist", "aebnas_fmnist", "edanas_fmnist"))
    assert (
        zniber.accelerator == "edge_tpu_x4" and zniber.allocate_cores and zniber.search.baseline == "static"
    )
    assert zniber.search.objectives == ("accuracy", "edp") and zniber.space.branches.weight_bits == (4, 8)
    assert aebnas.search.objectives == ("accuracy", "macs") and aebnas.space.tune_thresholds
    assert aebnas.space.drop_reference == "best" and len(aebnas.space.branches.convs) > 1
    assert edanas.search.objectives == ("accuracy", "macs") and not edanas.space.tune_thresholds
    assert edanas.space.policies == ("score_margin",) and edanas.search.surrogate is not None
    assert len(edanas.space.exit_fractions) == 9
    # AEBNAS and Zniber search one space: their supernets are trained once for both
    assert aebnas.space.stages == zniber.space.stages and aebnas.space.branches == zniber.space.branches


def write(tmp: Path, data: dict) -> Path:
    path = tmp / "w.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_quick_without_a_quick_section_is_one_line_naming_the_file(tmp: Path, capsys) -> None:
    path = write(tmp, {"dataset": "digits", "space": SPACE})
    with pytest.raises(CodesignError, match=r"w\.yaml: quick: expected a `quick:` section"):
        load_workload(path, quick=True)
    assert main(["explore", "-w", str(path), "--quick", "--runs", str(tmp / "runs")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "quick" in err[0] and not (tmp / "runs").exists()


@pytest.mark.parametrize(
    ("quick", "field"),
    [
        ({"data": {"train_images": 0}}, "data.train_images"),
        ({"data": {"train_images": 1.5}}, "data.train_images"),
        ({"data": {"images": 10}}, "data.images"),
        ({"data": [100]}, "data"),
        ({"search": {"population": 0}}, "search.population"),
        ([1, 2], "quick"),
    ],
)
def test_a_broken_quick_section_is_found_with_or_without_quick(tmp: Path, quick, field: str) -> None:
    path = write(
        tmp,
        {"dataset": "digits", "space": SPACE, "quick": quick},
    )
    for applied in (False, True):
        with pytest.raises(CodesignError, match=rf"w\.yaml: {field}\b"):
            load_workload(path, quick=applied)


def test_a_subset_larger_than_its_split_names_the_workload_field(tmp: Path, capsys) -> None:
    path = write(
        tmp,
        {
            "dataset": "digits",
            "space": SPACE,
            "data": {"val_images": 100_000},
        },
    )
    assert main(["explore", "-w", str(path), "--runs", str(tmp / "runs")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "w.yaml: data.val_images: expected between 1 and" in err[0], err


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("dataset: digits\nspace: {stages: [{depth: 1, width: 8}]}\n", "space.stages"),
        (
            "space:\n  stages:\n    - {depth: 1, width: 8}\n    - {depth: 0, width: 8}\n",
            "space.stages[1].depth",
        ),
        (
            "space:\n  stages:\n    - {depth: 1, width: 8, stride: 3}\n    - {depth: 1, width: 8}\n",
            "space.stages[0].stride",
        ),
        (
            "space:\n  stages:\n    - {depth: 1, width: 8}\n    - {depth: 1, width: 8}\n  thresholds: [0.2]\n",
            "space.thresholds",
        ),
        (
            "space:\n  stages:\n    - {depth: 1, width: 8}\n    - {depth: 1, width: 8}\n  exit_fractions: [2]\n",
            "space.exit_fractions",
        ),
        ("bogus: 1\n", "bogus"),
        (
            "space:\n  stages:\n    - {depth: 1, width: 8}\n    - {depth: 1, width: 8}\n"
            "  exit_branches: {convs: 1, stride: [1, 3]}\n",
            "space.exit_branches.stride",
        ),
        ("space: [1, 2\n", "line"),
        (
            "space:\n  stages:\n    - {depth: 1, width: 8}\n    - {depth: 1, width: 8}\n"
            "  threshold_tuning: {max_accuracy_drop: 0.01, confidence: 1.5}\n",
            "space.threshold_tuning.confidence",
        ),
        (
            "space:\n  stages:\n    - {depth: 1, width: 8}\n    - {depth: 1, width: 8}\n"
            "  threshold_tuning: {max_accuracy_drop: 0.01, reference: oracle}\n",
            "space.threshold_tuning.reference",
        ),
    ],
)
def test_malformed_workload_gets_one_line_error_naming_file_and_field(tmp, text, field):
    path = write_text(tmp, text)
    with pytest.raises(CodesignError) as info:
        load_workload(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and field in message and "expected" in message


def test_unknown_workload_name_lists_presets():
    with pytest.raises(CodesignError, match="digits"):
        load_workload("no_such_workload")
