"""Each thing once: an architecture's model is built once, and a static network's fitted weights are kept on
disk and read back by every evaluator sharing the folder (worker processes, a --baseline run's two searches)."""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from codesign.config.workload import parse_workload
from codesign.cost.candidate import CandidateCosting
from codesign.cost.engine import CostEngine
from codesign.cost.settings import CostOptions
from codesign.evaluation import evaluator as evaluator_module
from codesign.evaluation import statistics, weights
from codesign.evaluation.evaluator import EvaluationSettings, Evaluator
from codesign.hardware.target import load_hardware
from codesign.network.settings import FinetuneConfig, SupernetConfig, TrainingConfig
from codesign.network.supernet import train_supernet
from tests.conftest import tiny_spec
from tests.cost.test_zigzag import FAST

SPACE = {
    "space": {
        "stages": [
            {"depth": 1, "width": [8, 16], "stride": 1, "weight_bits": [4, 8]},
            {"depth": 1, "width": 16, "stride": 2},
            {"depth": 1, "width": [16, 24], "stride": 2},
        ],
        "exit_fractions": [0.3, 0.6],
    }
}


@pytest.fixture(scope="module")
def space():
    return parse_workload(SPACE, "test.yaml").space


@pytest.fixture(scope="module")
def supernet_state(space, digits):
    return train_supernet(
        space, digits, SupernetConfig(epochs=2, batch_size=64, random_subnets=1)
    ).state_dict()


def _evaluator(digits, supernet_state, static_dir, tag="t") -> Evaluator:
    return Evaluator(
        digits,
        CostEngine(load_hardware("edge_tpu_like"), CostOptions(lpf_limit=2)),
        EvaluationSettings(
            finetune=FinetuneConfig(head_steps=20), static_backbone=True, static_weights_tag=tag
        ),
        supernet_state=supernet_state,
        static_dir=static_dir,
    )


def test_a_static_network_is_fitted_once_for_every_evaluator_sharing_its_folder(
    space, supernet_state, digits, tmp, monkeypatch
):
    spec = space.decode([1] * len(space.genes))  # exits on
    sibling = space.decode([1 if not g.name.startswith("exit1") else 0 for g in space.genes])
    first = _evaluator(digits, supernet_state, tmp / "static")
    result = first.evaluate(spec)
    kept = sorted((tmp / "static").glob("static-*.pt"))
    assert len(kept) == 1  # one static network behind both architectures' candidates
    first.evaluate(sibling)
    assert sorted((tmp / "static").glob("static-*.pt")) == kept

    def refit(*args, **kwargs):
        raise AssertionError("a static network kept on disk was fitted again")

    monkeypatch.setattr(weights, "static_weights", refit)
    later = _evaluator(digits, supernet_state, tmp / "static")  # e.g. another worker process
    again = later.evaluate(spec)
    assert again.val == result.val and again.exits == result.exits and again.static == result.static
    static_key = next(iter(first._static_states))
    assert all(
        torch.equal(later._static_states[static_key][k], v)
        for k, v in first._static_states[static_key].items()
    )

    monkeypatch.undo()
    other_settings = _evaluator(digits, supernet_state, tmp / "static", tag="other")  # e.g. another supernet
    other_settings.evaluate(spec)
    assert len(list((tmp / "static").glob("static-*.pt"))) == 2  # never read under another tag


def test_an_architecture_is_built_once_when_it_is_fitted(space, supernet_state, digits, tmp, monkeypatch):
    built = []
    original = evaluator_module.build_model

    def counted(spec):
        built.append(spec)
        return original(spec)

    monkeypatch.setattr(evaluator_module, "build_model", counted)
    monkeypatch.setattr(weights, "build_model", counted)
    evaluator = _evaluator(digits, supernet_state, tmp / "static")
    evaluator.evaluate(space.decode([1] * len(space.genes)))
    # the static network once, the architecture once (fitted, then used for statistics and export)
    assert [len(s.active_exit_stages) for s in built] == [1, 3]


def test_the_early_heads_learn_on_the_backbone_outputs_the_static_fit_computed(
    space, supernet_state, digits, tmp, monkeypatch
):
    from codesign.network import finetune

    spec = space.decode([1] * len(space.genes))
    passes = []
    original = finetune.stage_features

    def counted(model, images, stages):
        passes.append(sorted(stages))
        return original(model, images, stages)

    monkeypatch.setattr(finetune, "stage_features", counted)
    shared = _evaluator(digits, supernet_state, tmp / "a").evaluate(spec)
    # train and validation images through the backbone once each, every stage kept for the early heads
    assert passes == [[0, 1, 2], [0, 1, 2]]

    passes.clear()
    unshared = functools.partial(finetune.StageOutputs, budget_bytes=0)  # nothing kept: each fit runs its own
    monkeypatch.setattr(evaluator_module, "StageOutputs", unshared)
    alone = _evaluator(digits, supernet_state, tmp / "b").evaluate(spec)
    assert len(passes) == 4
    assert alone.val == shared.val and alone.exits == shared.exits and alone.static == shared.static


def test_an_architecture_fitted_by_one_run_is_read_by_the_next_from_the_shared_folder(
    space, supernet_state, digits, tmp, monkeypatch
):
    """A later run of the same settings (another run folder, another accelerator) reads the weights an earlier
    run fitted from the shared folder instead of fitting them again, and gets the same statistics; its own run
    folder then holds them too (a hard link), and nothing is read under another tag."""
    spec = space.decode([1] * len(space.genes))

    def run(run_dir, accelerator="edge_tpu_like", tag="t"):
        return Evaluator(
            digits,
            CostEngine(load_hardware(accelerator), CostOptions(lpf_limit=2)),
            EvaluationSettings(
                finetune=FinetuneConfig(head_steps=20),
                static_backbone=True,
                weights_tag=tag,
                static_weights_tag=tag,
            ),
            supernet_state=supernet_state,
            weights_dir=run_dir / "weights",
            static_dir=run_dir / "weights" / "static",
            shared_dir=tmp / "shared",
        )

    first = run(tmp / "run1").evaluate(spec)
    shared = sorted(p.name for p in (tmp / "shared").glob("*.pt"))
    assert len(shared) == 2 and sum(name.startswith("static-") for name in shared) == 1

    def refit(*args, **kwargs):
        raise AssertionError("weights kept in the shared folder were fitted again")

    monkeypatch.setattr(weights, "inherited_model", refit)
    monkeypatch.setattr(weights, "static_weights", refit)
    second = run(tmp / "run2", "eyeriss_like").evaluate(spec)
    assert second.val == first.val and second.accelerator != first.accelerator
    architecture_file = next(n for n in shared if not n.startswith("static-"))
    assert (tmp / "run2" / "weights" / architecture_file).stat().st_ino == (
        tmp / "shared" / architecture_file
    ).stat().st_ino

    monkeypatch.undo()
    run(tmp / "run3", tag="other").evaluate(spec)  # other settings: fitted, never read under another tag
    assert len(list((tmp / "shared").glob("*.pt"))) == 4


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


def test_a_mapping_gene_reaches_the_evaluated_candidates(tmp: Path, digits):

    from codesign.config.workload import parse_workload
    from codesign.cost.cache import LayerCostCache
    from codesign.evaluation.evaluator import EvaluationSettings, Evaluator
    from codesign.network.settings import TrainingConfig
    from codesign.runs.setup import prepare_space

    library = Path(__file__).resolve().parents[2] / "accelerators"
    mapping = yaml.safe_load((library / "edge_tpu_like.mapping.yaml").read_text())
    mapping[0]["spatial_mapping"] = {"D1": ["K, 8"], "D2": ["C, 8"], "D3": ["OX, 1"], "D4": ["OY, 1"]}
    (tmp / "narrow.mapping.yaml").write_text(yaml.safe_dump(mapping))
    default = str(library / "edge_tpu_like.mapping.yaml")
    workload = parse_workload(
        {
            "space": {"stages": [{"depth": 1, "width": 8}, {"depth": 1, "width": 16, "stride": 2}]},
            "hardware": {"search": {"mapping": [default, "narrow.mapping.yaml"]}},
        },
        str(tmp / "w.yaml"),
    )
    target = load_hardware(workload.accelerator)
    space = prepare_space(workload, digits, target)
    gene = next(g for g in space.genes if g.name == "hw.mapping")
    assert gene.choices == (default, str(tmp / "narrow.mapping.yaml"))
    evaluator = Evaluator(
        digits,
        CostEngine(target, FAST, LayerCostCache(tmp / "c.sqlite")),
        EvaluationSettings(training=TrainingConfig(epochs=1)),
    )
    indices = [0] * len(space.genes)
    results = []
    for choice in (0, 1):
        indices[space.genes.index(gene)] = choice
        spec = space.decode(indices)
        assert evaluator.target(spec).mapping_path.name == Path(gene.choices[choice]).name
        results.append(evaluator.evaluate(spec))
    assert (
        results[0].exits[-1].latency_cycles < results[1].exits[-1].latency_cycles
    )  # 16x fewer MACs in parallel
    assert "mapping=" in results[1].spec.describe_hardware()
