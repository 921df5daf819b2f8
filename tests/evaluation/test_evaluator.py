"""Each thing once: an architecture's model is built once, and a static network's fitted weights are kept on
disk and read back by every evaluator sharing the folder (worker processes, a --baseline run's two searches)."""

from __future__ import annotations

import functools

import pytest
import torch

from codesign.config.workload import parse_workload
from codesign.cost.engine import CostEngine
from codesign.cost.settings import CostOptions
from codesign.evaluation import evaluator as evaluator_module
from codesign.evaluation import weights
from codesign.evaluation.evaluator import EvaluationSettings, Evaluator
from codesign.hardware.target import load_hardware
from codesign.network.settings import FinetuneConfig, SupernetConfig
from codesign.network.supernet import train_supernet

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
