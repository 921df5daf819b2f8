from __future__ import annotations

from pathlib import Path

from codesign.config.workload import load_workload
from codesign.spec import CandidateSpec


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
