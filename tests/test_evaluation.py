"""The evaluator reads as its steps: each called once, in order, none calling back into the evaluator."""

from __future__ import annotations

import functools

import pytest

from codesign.cost.candidate import CandidateCosting
from codesign.cost.engine import CostEngine
from codesign.cost.settings import CostOptions
from codesign.evaluation import evaluator as evaluator_module
from codesign.evaluation import statistics
from codesign.evaluation.evaluator import EvaluationSettings, Evaluator
from codesign.network.settings import TrainingConfig
from tests.conftest import tiny_spec


def _record(monkeypatch, owner, name: str, label: str, calls: list[str]) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def recorded(*args, **kwargs):
        if label == "exit statistics":
            calls.append(f"{label} {'val' if original.__name__ == 'calibrated_exits' else 'test'}")
        else:
            calls.append(label)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, recorded)


def test_a_candidate_goes_down_the_steps_once_and_in_order(monkeypatch, digits, edge_tpu):
    calls: list[str] = []
    _record(monkeypatch, Evaluator, "_fitted", "weights", calls)
    _record(monkeypatch, statistics, "calibrated_exits", "exit statistics", calls)
    _record(monkeypatch, statistics, "cached_exits", "exit statistics", calls)
    _record(monkeypatch, evaluator_module, "qcdq_graph", "export", calls)
    _record(monkeypatch, CandidateCosting, "residency", "residency", calls)
    _record(monkeypatch, CandidateCosting, "layer_costs", "layer costs", calls)
    _record(monkeypatch, CandidateCosting, "exit_costs", "exit costs", calls)
    _record(monkeypatch, statistics, "exit_statistics", "thresholds", calls)
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


def test_no_step_imports_the_evaluator():
    """The steps take what they need as arguments: none reaches back into the module that sequences them."""
    import ast
    from pathlib import Path

    folder = Path(evaluator_module.__file__).parent
    for step in ("settings", "weights", "statistics"):
        tree = ast.parse((folder / f"{step}.py").read_text())
        imported = {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
        }
        assert "codesign.evaluation.evaluator" not in imported, step
    assert len((folder / "evaluator.py").read_text().splitlines()) <= 350


def test_exits_no_input_takes_are_switched_off_and_not_paid_for(digits, edge_tpu):
    """Thresholds above every confidence: no input leaves early, so the network is its static twin, costed so."""
    from dataclasses import replace

    evaluator = Evaluator(
        digits,
        CostEngine(edge_tpu, CostOptions(lpf_limit=2)),
        EvaluationSettings(training=TrainingConfig(epochs=1), test_during_search=True),
    )
    never = replace(tiny_spec(exits=(True, True)), thresholds=(2.0, 2.0))
    result = evaluator.evaluate(never)
    assert result.spec.active_exit_stages == (2,) and result.num_exits == 1
    assert result.expected_val.energy_pj == result.static.energy_pj
    assert result.val.fractions == (1.0,) and result.test.fractions == (1.0,)
    # one exit empty, the other taken: only the empty one goes
    some = evaluator.evaluate(replace(tiny_spec(exits=(True, True)), thresholds=(2.0, 0.0)))
    assert some.spec.active_exit_stages == (1, 2) and some.val.fractions[0] == 1.0
    assert some.exits == tuple(evaluator.costing(some.spec).priced()[2])
    # every exit reports its accuracy, temperature and calibration error before and after
    assert (
        len(some.val.temperatures)
        == len(some.val.calibration_errors)
        == len(some.val.calibration_errors_raw)
        == 2
    )


def test_searched_exit_fractions_become_thresholds_inside_the_confidences(digits, edge_tpu):
    from dataclasses import replace

    evaluator = Evaluator(
        digits,
        CostEngine(edge_tpu, CostOptions(lpf_limit=2)),
        EvaluationSettings(training=TrainingConfig(epochs=1), test_during_search=True),
    )
    spec = replace(tiny_spec(exits=(True, True)), thresholds=(1.0, 1.0), exit_fractions=(0.25, 0.5))
    result = evaluator.evaluate(spec)
    fractions = result.val.fractions
    assert fractions[0] >= 0.25 and fractions[0] < 0.3  # ties at the threshold leave together
    assert fractions[1] == pytest.approx(0.5 * (1 - fractions[0]), abs=0.02)
    assert result.spec.exit_fractions == (0.25, 0.5) and result.spec.thresholds != (1.0, 1.0)
