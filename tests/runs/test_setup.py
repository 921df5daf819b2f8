"""`workload_evaluator`: networks of a workload's space fitted as its searches fit them, on any accelerator."""

from __future__ import annotations

from dataclasses import replace

import pytest

from codesign.config.workload import load_workload
from codesign.evaluation import weights
from codesign.runs.setup import prepare_run, workload_evaluator


def test_evaluators_on_two_accelerators_share_weights_and_exits_off_give_the_static_network(
    monkeypatch,
) -> None:
    workload = load_workload("digits")
    workload = replace(workload, supernet=replace(workload.supernet, epochs=2, head_epochs=3))
    quiet = {"threshold_tuning": 0.005, "report": lambda line: None}
    first = workload_evaluator(workload, "edge_tpu_like", **quiet)
    assert first.settings.static_backbone and first.settings.threshold_tuning == 0.005
    space = prepare_run(workload).space
    spec = space.decode([1] * len(space.genes))
    with_exits = replace(spec, exits=(True, True))
    eenn = first.evaluate(with_exits)
    static = first.evaluate(replace(spec, exits=(False, False)))
    # exits off is the static network the static search fits: its accuracy is the early-exit network's final exit's
    assert eenn.static_val_accuracy == pytest.approx(static.val.accuracy, abs=1e-12)
    assert static.exits[-1].energy_pj == pytest.approx(eenn.static.energy_pj, rel=1e-12)

    def refit(*args, **kwargs):
        raise AssertionError("weights another accelerator's evaluator fitted were fitted again")

    monkeypatch.setattr(weights, "inherited_model", refit)
    other = workload_evaluator(workload, "eyeriss_like", **quiet)
    again = other.evaluate(with_exits)
    assert again.accelerator != eenn.accelerator
    assert again.static_val_accuracy == eenn.static_val_accuracy
