"""The evaluator reads as its steps: each called once, in order, none calling back into the evaluator."""

from __future__ import annotations

import functools

from codesign.cost.candidate import CandidateCosting
from codesign.cost.engine import CostEngine
from codesign.cost.settings import CostOptions
from codesign.evaluation import evaluator as evaluator_module
from codesign.evaluation.evaluator import EvaluationSettings, Evaluator
from codesign.network.settings import TrainingConfig
from tests.conftest import tiny_spec


def _record(monkeypatch, owner, name: str, label: str, calls: list[str]) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def recorded(*args, **kwargs):
        if label == "exit statistics":
            calls.append(f"{label} {args[3] if len(args) > 3 else kwargs.get('split')}")
        else:
            calls.append(label)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, recorded)


def test_a_candidate_goes_down_the_steps_once_and_in_order(monkeypatch, digits, edge_tpu):
    calls: list[str] = []
    _record(monkeypatch, Evaluator, "_weights", "weights", calls)
    _record(monkeypatch, Evaluator, "cached_exits", "exit statistics", calls)
    _record(monkeypatch, evaluator_module, "export_qcdq", "export", calls)
    _record(monkeypatch, CandidateCosting, "residency", "residency", calls)
    _record(monkeypatch, CandidateCosting, "layer_costs", "layer costs", calls)
    _record(monkeypatch, CandidateCosting, "exit_costs", "exit costs", calls)
    _record(monkeypatch, evaluator_module, "exit_statistics", "thresholds", calls)
    for method in ("trained", "costing", "exit_costs", "test_exits", "model"):  # the evaluator's own entries
        _record(monkeypatch, Evaluator, method, f"evaluator.{method}", calls)

    evaluator = Evaluator(
        digits,
        CostEngine(edge_tpu, CostOptions(lpf_limit=2)),
        EvaluationSettings(training=TrainingConfig(epochs=1), threshold_tuning=0.01),
    )
    priced = ["residency", "layer costs", "exit costs"]
    result = evaluator.evaluate(tiny_spec(exits=(True, True)))
    assert calls == [
        "evaluator.trained",
        "weights",
        "exit statistics val",
        "exit statistics test",
        "export",
        *priced,
        "thresholds",
        *priced,  # the static counterpart (the final exit alone), priced the same way
    ]
    calls.clear()
    sibling = evaluator.evaluate(tiny_spec(exits=(True, False)))  # same architecture: no training, no export
    assert calls == ["evaluator.trained", *priced, "thresholds", *priced]
    assert result.static == sibling.static  # one backbone, one static counterpart
    costing = evaluator.costing(tiny_spec(exits=(True, True)))
    assert result.exits == tuple(costing.priced()[2])  # the steps alone give the evaluator's costs
