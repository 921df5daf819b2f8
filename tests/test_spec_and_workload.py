from __future__ import annotations

from pathlib import Path

import pytest

from codesign.config.workload import load_workload
from codesign.errors import CodesignError
from codesign.spec import CandidateSpec

from .conftest import tiny_spec


def test_spec_roundtrip_and_stable_key():
    spec = tiny_spec(exits=(False, True))
    again = CandidateSpec.from_dict(spec.to_dict())
    assert again == spec and hash(again) == hash(spec)
    assert again.key() == spec.key()
    assert spec.active_exit_stages == (1, 2)
    assert spec.active_thresholds == (0.2,)


def test_architecture_shares_weights_across_exit_choices():
    a, b = tiny_spec(exits=(False, True)), tiny_spec(exits=(True, False))
    assert a.key() != b.key()
    assert a.architecture() == b.architecture()
    assert a.without_early_exits().active_exit_stages == (2,)


def test_default_workload_decodes_every_gene():
    workload = load_workload("digits")
    space = workload.space
    assert workload.dataset == "digits" and workload.accelerator == "edge_tpu_like"
    spec = space.decode([len(g.choices) - 1 for g in space.genes])
    assert spec.num_stages == 3 and all(spec.exits)
    # the threshold genes are target exit fractions, turned into thresholds on validation by the evaluator
    assert spec.exit_fractions == (space.exit_fractions[-1],) * 2 and spec.thresholds == (1.0, 1.0)
    assert [g.name for g in space.genes if g.name.endswith(".fraction")] == [
        "exit0.fraction",
        "exit1.fraction",
    ]
    off = space.decode([0] * len(space.genes))
    assert not any(off.exits) and off.thresholds == (1.0, 1.0) and off.exit_fractions == ()
    assert CandidateSpec.from_dict(spec.to_dict()) == spec


def write(tmp: Path, text: str) -> Path:
    path = tmp / "w.yaml"
    path.write_text(text)
    return path


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
    path = write(tmp, text)
    with pytest.raises(CodesignError) as info:
        load_workload(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and field in message and "expected" in message


def test_unknown_workload_name_lists_presets():
    with pytest.raises(CodesignError, match="digits"):
        load_workload("no_such_workload")


def test_hardware_parameters_and_core_allocation_are_genes(tmp):
    from dataclasses import replace

    path = write(
        tmp,
        "accelerator: edge_tpu_x4\n"
        "space:\n  stages:\n    - {depth: 1, width: 8}\n    - {depth: 1, width: 8, stride: 2}\n"
        "hardware:\n  overrides: {codesign.clock_mhz: 400}\n"
        "  search: {operational_array.sizes: [[8, 8, 4, 4], [16, 16, 4, 4]]}\n",
    )
    workload = load_workload(path)
    assert workload.hardware_overrides == (("codesign.clock_mhz", 400),)
    space = replace(workload.space, cores=4)
    names = [g.name for g in space.genes]
    assert "hw.operational_array.sizes" in names and "core.stage1" in names and "core.head0" in names
    spec = space.decode([len(g.choices) - 1 for g in space.genes])
    assert spec.hardware_overrides() == {"operational_array.sizes": [16, 16, 4, 4]}
    assert spec.stage_cores == (3, 3) and spec.head_cores == (3, 3)
    assert spec.architecture() == space.decode([0] * len(space.genes)).architecture()  # same trained weights
    assert CandidateSpec.from_dict(spec.to_dict()) == spec
    assert "cores" in spec.describe_hardware()
