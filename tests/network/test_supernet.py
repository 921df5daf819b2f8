from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
import torch

from codesign.config.workload import parse_workload
from codesign.errors import CodesignError
from codesign.exits import CachedExits
from codesign.hardware.target import load_hardware
from codesign.machine import usable_cpus
from codesign.network.finetune import calibrate, finetune
from codesign.network.model import build_model
from codesign.network.settings import FinetuneConfig, SupernetConfig
from codesign.network.supernet import Supernet, extreme_candidate, inherit, random_candidate, train_supernet
from codesign.network.training import exit_logits
from codesign.spec import ExitBranch
from tests.config.test_search import SPACE as SEARCH_SPACE

SPACE = {
    "space": {
        "stages": [
            {"block": "conv", "depth": 1, "width": [8, 16], "stride": 1, "weight_bits": [4, 8]},
            {
                "block": ["mbconv", "basic"],
                "depth": [1, 2],
                "width": [16, 24],
                "kernel": [3, 5],
                "expansion": [2, 3],
                "stride": 2,
                "weight_bits": [4, 8],
                "act_bits": [4, 8],
            },
            {"block": ["mbconv", "basic", "conv"], "depth": [1, 2], "width": [24, 32], "stride": 2},
        ],
        "exit_branches": {"convs": [0, 1], "channels": [8, 16], "pool": [1, 2]},
        "policies": ["score_margin", "max_prob", "entropy"],
    }
}


@pytest.fixture(scope="module")
def space():
    return parse_workload(SPACE, "test.yaml").space


@pytest.fixture(scope="module")
def supernet(space, digits):
    return train_supernet(space, digits, SupernetConfig(epochs=3, batch_size=64, random_subnets=1, seed=0))


def test_every_sampled_candidate_runs_in_the_supernet_and_as_a_quantized_model(space, supernet, digits):
    rng = random.Random(0)
    images = digits.val.images[:8]
    for spec in [
        extreme_candidate(space, True),
        extreme_candidate(space, False),
        *(random_candidate(space, rng) for _ in range(6)),
    ]:
        with torch.no_grad():
            outputs = supernet(images, spec)
        assert len(outputs) == len(spec.active_exit_stages) and outputs[0].shape == (8, 10)
        model = inherit(build_model(spec), supernet.state_dict())
        assert len(model.eval()(images)) == len(outputs)


def test_inherit_copies_sliced_and_centre_cropped_weights(space, supernet):
    spec = extreme_candidate(space, False)
    big = supernet.state_dict()
    model = inherit(build_model(spec), big)
    own = model.state_dict()
    key = "stages.0.0.body.conv.weight"
    assert torch.equal(own[key], big[key][: own[key].shape[0], : own[key].shape[1]])
    # a 3x3 candidate kernel is the centre of the supernet's 5x5 kernel
    k3 = random_candidate(space, random.Random(5))
    stages = list(k3.stages)
    from dataclasses import replace

    stages[1] = replace(stages[1], block="basic", kernel=3)
    k3 = replace(k3, stages=tuple(stages))
    weight = inherit(build_model(k3), big).state_dict()["stages.1.0.conv1.conv.weight"]
    source = big["stages.1.0.conv1.conv.weight"]
    assert source.shape[-1] == 5 and torch.equal(
        weight, source[: weight.shape[0], : weight.shape[1], 1:4, 1:4]
    )
    # exit classifiers are kept per pooling grid
    pool1 = replace(
        spec, branches=tuple(replace(b, pool=1) for b in spec.branches[:-1]) + (spec.branches[-1],)
    )
    fc = inherit(build_model(pool1), big).state_dict()["heads.0.fc.weight"]
    assert torch.equal(fc, big["heads.0.fc_p1.weight"][:, : fc.shape[1]])


def test_inherited_quantized_candidate_is_accurate_after_calibration(space, supernet, digits):
    spec = extreme_candidate(space, True)
    model = inherit(build_model(spec), supernet.state_dict())
    calibrate(model, digits.train, 512)
    before = (
        CachedExits.from_logits(exit_logits(model, digits.val), digits.val.labels.numpy()).correct[-1].mean()
    )
    finetune(model, digits.train, 20, FinetuneConfig(), heads_only=True)
    after = (
        CachedExits.from_logits(exit_logits(model, digits.val), digits.val.labels.numpy()).correct[-1].mean()
    )
    assert before > 0.6, before  # chance: 0.1
    assert after > 0.6
    backbone = [p for name, p in model.named_parameters() if name.startswith("stages.")]
    assert all(p.requires_grad for p in backbone)  # heads-only fine-tuning restores the flags


def test_space_with_blocks_branches_and_policies_decodes(space):
    names = {g.name for g in space.genes}
    assert {"stage1.block", "stage1.expansion", "exit0.convs", "exit0.pool", "policy"} <= names
    spec = space.decode([len(g.choices) - 1 for g in space.genes])
    assert spec.stages[2].block == "conv" and spec.policy == "entropy"
    assert spec.branches[0] == ExitBranch(convs=1, channels=16, kernel=3, pool=2)
    off = space.decode([0] * len(space.genes))
    assert off.branches[0] == ExitBranch(convs=0, channels=8, kernel=3, pool=1)
    assert np.isfinite(space.size())


def test_finalize_measures_test_accuracy_before_and_after_when_the_search_skipped_it(
    space, supernet, digits, tmp
):
    from codesign.cost.engine import CostEngine
    from codesign.cost.settings import CostOptions
    from codesign.evaluation.evaluator import EvaluationSettings, Evaluator
    from codesign.evaluation.finalize import finalize

    engine = CostEngine(load_hardware("edge_tpu_like"), CostOptions(lpf_limit=2))
    evaluator = Evaluator(
        digits,
        engine,
        EvaluationSettings(finetune=FinetuneConfig(head_steps=5, final_epochs=0.2), test_during_search=False),
        supernet_state=supernet.state_dict(),
    )
    result = evaluator.evaluate(extreme_candidate(space, False))
    assert result.test is None and result.expected_test is None  # the search never touched the test split
    final, model = finalize(evaluator, result)
    assert final.test is not None and final.test_accuracy_before_finetune is not None
    assert 0.0 < final.test.accuracy <= 1.0 and final.expected_test.energy_pj > 0
    assert len(model.eval()(digits.test.images[:2])) == len(final.exits)


def test_test_figures_of_a_stored_run_are_read_back_without_evaluating_again(space, supernet, digits, tmp):
    from codesign.cost.engine import CostEngine
    from codesign.cost.settings import CostOptions
    from codesign.evaluation.evaluator import EvaluationSettings, Evaluator
    from codesign.evaluation.finalize import with_test

    def evaluator() -> Evaluator:
        return Evaluator(
            digits,
            CostEngine(load_hardware("edge_tpu_like"), CostOptions(lpf_limit=2)),
            EvaluationSettings(finetune=FinetuneConfig(head_steps=5), test_during_search=False),
            weights_dir=tmp / "weights",
            supernet_state=supernet.state_dict(),
        )

    searching = evaluator()
    results = [searching.evaluate(extreme_candidate(space, largest)) for largest in (False, True)]
    expected = [with_test(searching, r) for r in results]
    later = evaluator()  # e.g. a comparison script opening the run afterwards
    again = [with_test(later, r) for r in results]
    assert not later._architectures  # nothing re-trained, re-validated or re-exported
    assert [r.test for r in again] == [r.test for r in expected]
    assert [r.static_test_accuracy for r in again] == [r.static_test_accuracy for r in expected]


def test_searched_accuracy_drop_is_a_gene_and_sets_the_tuned_operating_point(space, supernet, digits):
    from dataclasses import replace

    from codesign.cost.engine import CostEngine
    from codesign.cost.settings import CostOptions
    from codesign.evaluation.evaluator import EvaluationSettings, Evaluator

    tuned_space = parse_workload(
        {"space": {**SPACE["space"], "threshold_tuning": {"max_accuracy_drop": [0.0, 0.05]}}}, "t.yaml"
    ).space
    genes = [g.name for g in tuned_space.genes]
    assert "accuracy_drop" in genes and not any(name.endswith(".threshold") for name in genes)
    drop_index = genes.index("accuracy_drop")
    loose = tuned_space.decode([1 if i != drop_index else 1 for i in range(len(genes))])
    strict = tuned_space.decode([1 if i != drop_index else 0 for i in range(len(genes))])
    assert (strict.accuracy_drop, loose.accuracy_drop) == (0.0, 0.05) and strict.key() != loose.key()
    no_exits = tuned_space.decode([0] * len(genes))
    assert no_exits.accuracy_drop is None and "accuracy_drop" not in no_exits.to_dict()
    assert replace(strict, accuracy_drop=None).key() == replace(loose, accuracy_drop=None).key()

    evaluator = Evaluator(
        digits,
        CostEngine(load_hardware("edge_tpu_like"), CostOptions(lpf_limit=2)),
        EvaluationSettings(finetune=FinetuneConfig(head_steps=5), threshold_tuning=0.01),
        supernet_state=supernet.state_dict(),
    )
    at_strict, at_loose = evaluator.evaluate(strict), evaluator.evaluate(loose)
    assert at_strict.val.accuracy >= at_strict.static_val_accuracy - 1e-12
    assert at_loose.val.accuracy >= at_loose.static_val_accuracy - 0.05 - 1e-12
    assert at_loose.expected_val.energy_pj <= at_strict.expected_val.energy_pj
    assert "drop<=5%" in at_loose.spec.describe_exits()


def test_random_subnets_depend_only_on_weight_shaping_genes(space):
    other = parse_workload(
        {
            "space": {
                **SPACE["space"],
                "policies": ["entropy"],
                "threshold_tuning": {"max_accuracy_drop": [0, 0.01]},
            }
        },
        "t.yaml",
    ).space
    first = [random_candidate(space, random.Random(3)).key() for _ in range(1)]
    assert [random_candidate(other, random.Random(3)).key() for _ in range(1)] == first
    a, b = random.Random(5), random.Random(5)
    assert [random_candidate(space, a).key() for _ in range(20)] == [
        random_candidate(other, b).key() for _ in range(20)
    ]


def test_strided_exit_head_trains_inherits_exports_and_costs_a_quarter(digits, tmp):
    from dataclasses import replace

    from codesign.cost.graph import layers_from_onnx
    from codesign.deploy.qcdq import export_qcdq, max_output_difference

    data = {"space": {**SPACE["space"], "exit_branches": {"convs": [1], "channels": [16], "stride": [1, 2]}}}
    strided_space = parse_workload(data, "test.yaml").space
    assert "exit0.stride" in {g.name for g in strided_space.genes}
    assert "exit0.stride" not in {g.name for g in parse_workload(SPACE, "test.yaml").space.genes}
    net = train_supernet(strided_space, digits, SupernetConfig(epochs=1, batch_size=64, seed=0))
    largest = extreme_candidate(strided_space, True)
    assert all(b.stride == 1 for b in largest.branches)  # the teacher convolves at full resolution
    strided = replace(largest, branches=(replace(largest.branches[0], stride=2), *largest.branches[1:]))
    assert strided.describe_exits().startswith("0:c1x16k3s2p2 ")
    assert strided.key() != largest.key()
    assert all("stride" not in b for b in largest.to_dict()["branches"])  # keys of unstrided specs unchanged
    images = digits.val.images[:4]
    with torch.no_grad():
        assert net(images, strided)[0].shape == (4, 10)
    layers = {}
    for name, spec in (("plain", largest), ("strided", strided)):
        model = inherit(build_model(spec), net.state_dict()).eval()
        path = export_qcdq(model, tmp / f"{name}.onnx")
        assert max_output_difference(model, path, images) < 1e-3
        layers[name] = [layer for layer in layers_from_onnx(path) if layer.segment == "head0"]
    plain_conv, strided_conv = layers["plain"][0], layers["strided"][0]
    sizes = dict(zip(strided_conv.loop_dims, strided_conv.loop_sizes, strict=True))
    assert (sizes["OX"], sizes["OY"]) == (4, 4)  # 8x8 stage-0 map, stride 2
    assert strided_conv.macs * 4 == plain_conv.macs


def test_supernet_checkpoint_trains_once_on_every_core_then_reuses(space, digits, tmp):

    from codesign.network.supernet import supernet_checkpoint

    lines: list[str] = []
    config = SupernetConfig(epochs=1, batch_size=256, seed=0)
    before = torch.get_num_threads()
    path = supernet_checkpoint(space, digits, config, tmp / "supernets", lines.append)
    assert path.is_file() and f"{usable_cpus()} CPU threads" in lines[0]
    assert torch.get_num_threads() == before  # candidate evaluation keeps its own thread count
    again = supernet_checkpoint(space, digits, config, tmp / "supernets", lines.append)
    assert again == path and lines[-1] == f"supernet: reusing {path}"


def test_exit_gradient_scales_only_what_the_early_exits_send_into_the_backbone(space):
    import torch.nn.functional as F

    from codesign.network.supernet import Supernet

    torch.manual_seed(0)
    joint = Supernet(space).train()
    scaled = Supernet(space, exit_gradient=0.25).train()
    scaled.load_state_dict(joint.state_dict())
    spec = extreme_candidate(space, True)
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])

    def gradients(net: Supernet, exit_index: int) -> dict[str, torch.Tensor]:
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x, spec)[exit_index], y).backward()
        return {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}

    early_joint, early_scaled = gradients(joint, 0), gradients(scaled, 0)
    assert early_joint.keys() == early_scaled.keys()
    for name, grad in early_joint.items():  # the early head learns at full rate, the backbone at a quarter
        factor = 1.0 if name.startswith("heads.") else 0.25
        torch.testing.assert_close(early_scaled[name], factor * grad)
    assert any(name.startswith("stages.0") for name in early_joint)
    final_joint, final_scaled = gradients(joint, -1), gradients(scaled, -1)
    for name, grad in final_joint.items():  # the final exit trains everything as before
        torch.testing.assert_close(final_scaled[name], grad)
    with torch.no_grad():  # and the forward pass is unchanged
        for a, b in zip(joint.eval()(x, spec), scaled.eval()(x, spec), strict=True):
            torch.testing.assert_close(a, b)


def test_exit_gradient_keys_its_own_supernet_and_is_validated(space):
    from codesign.errors import CodesignError
    from codesign.network.supernet import supernet_key

    default = supernet_key(space, "digits", SupernetConfig())
    assert supernet_key(space, "digits", SupernetConfig(exit_gradient=1.0)) == default
    assert supernet_key(space, "digits", SupernetConfig(exit_gradient=0.3)) != default
    workload = {**SPACE, "training": {"supernet": {"exit_gradient": 0.3}}}
    assert parse_workload(workload, "w.yaml").supernet.exit_gradient == 0.3
    with pytest.raises(CodesignError) as error:
        parse_workload({**SPACE, "training": {"supernet": {"exit_gradient": 1.5}}}, "w.yaml")
    assert str(error.value).startswith("w.yaml: training.supernet.exit_gradient") and "[0, 1]" in str(
        error.value
    )


def test_static_supernet_trains_backbones_without_exit_heads():
    from codesign.data.registry import load_dataset
    from codesign.network.settings import SupernetConfig
    from codesign.network.supernet import train_supernet

    data = {"space": {**SEARCH_SPACE, "exit_branches": {"pool": [1, 2]}, "final_head": {"pool": 1}}}
    dataset = load_dataset("digits", seed=0)
    for early_exits, heads_trained in ((True, True), (False, False)):
        data["space"]["early_exits"] = early_exits
        space = replace(parse_workload(data, "w.yaml").space, resolution=8, in_channels=1, num_classes=10)
        torch.manual_seed(0)  # as train_supernet does before building its network
        untrained = Supernet(space).state_dict()
        trained = train_supernet(space, dataset, SupernetConfig(epochs=1, batch_size=256)).state_dict()

        moved = {
            k.split(".")[0] + "." + k.split(".")[1]
            for k, v in trained.items()
            if not torch.equal(v, untrained[k])
        }
        assert ("heads.0" in moved) == heads_trained  # the early exit's head
        assert {"heads.1", "stages.0", "stages.1"} <= moved  # the final head and the backbone always


def test_static_space_has_no_exit_genes_and_its_own_supernet():
    from codesign.network.settings import SupernetConfig
    from codesign.network.supernet import supernet_key

    space = {**SEARCH_SPACE, "threshold_tuning": {"max_accuracy_drop": [0.0, 0.01]}}
    early = parse_workload({"space": space}, "w.yaml").space
    static = parse_workload({"space": {**space, "early_exits": False}}, "w.yaml").space
    names = [g.name for g in static.genes]
    assert not [n for n in names if n.startswith("exit") or n in ("policy", "accuracy_drop")]
    assert [g.name for g in early.genes if g.name.startswith("stage")] == names
    spec = static.decode([len(g.choices) - 1 for g in static.genes])
    assert not any(spec.exits) and spec.active_exit_stages == (1,) and spec.accuracy_drop is None
    # a supernet trained without exit heads must never be reused by an early-exit search of the same space
    config = SupernetConfig()
    assert supernet_key(static, "digits", config) != supernet_key(early, "digits", config)
    # strided exit heads train differently; a static supernet has no heads, so they do not change its key
    strided = {**space, "exit_branches": {"convs": [0, 1], "stride": [1, 2]}}
    unstrided = {**space, "exit_branches": {"convs": [0, 1]}}
    keys = {
        (exits, name): supernet_key(
            parse_workload({"space": {**s, "early_exits": exits}}, "w.yaml").space, "digits", config
        )
        for exits in (True, False)
        for name, s in (("strided", strided), ("unstrided", unstrided))
    }
    assert keys[(True, "strided")] != keys[(True, "unstrided")]
    assert keys[(False, "strided")] == keys[(False, "unstrided")]
    with pytest.raises(CodesignError) as error:
        parse_workload({"space": {**SEARCH_SPACE, "early_exits": "no"}}, "w.yaml")
    assert str(error.value).startswith("w.yaml: space.early_exits") and "true or false" in str(error.value)
