from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch

from codesign.deploy.runtime import EarlyExitRuntime
from codesign.deploy.segments import MANIFEST_NAME, SegmentedModel, export_segments
from codesign.errors import CodesignError
from codesign.exits import CachedExits, confidence, exit_decisions, score_margin
from codesign.network.model import build_model, load_shared_weights
from codesign.network.training import exit_logits
from tests.conftest import tiny_spec


def _mid_threshold(values: np.ndarray, quantile: float) -> float:
    """A threshold half-way between two neighbouring confidences near `quantile` (no ties at the boundary)."""
    ordered = np.unique(values)
    k = int(quantile * (len(ordered) - 1))
    return float((ordered[k] + ordered[k + 1]) / 2)


@pytest.fixture(scope="module")
def torch_logits(trained_tiny, digits):
    spec, trained = trained_tiny
    model = load_shared_weights(build_model(spec), trained.state_dict)
    return exit_logits(model, digits.val)


@pytest.fixture(scope="module")
def thresholds(torch_logits):
    # about a third of the inputs leave at exit 0 and a third of the rest at exit 1
    return (
        _mid_threshold(score_margin(torch_logits[0]), 0.65),
        _mid_threshold(score_margin(torch_logits[1]), 0.6),
    )


@pytest.fixture(scope="module")
def segmented(trained_tiny, thresholds, tmp_path_factory):
    spec, trained = trained_tiny
    model = load_shared_weights(build_model(spec), trained.state_dict)
    folder = tmp_path_factory.mktemp("segmented") / "model"
    export_segments(model, folder, thresholds=thresholds)
    return folder


def _reference(torch_logits, thresholds):
    """Early-exit decisions straight from PyTorch logits and codesign.exits.score_margin."""
    n = len(torch_logits[0])
    taken = np.full(n, 2)
    remaining = np.ones(n, dtype=bool)
    for k, threshold in enumerate(thresholds):
        leave = remaining & (score_margin(torch_logits[k]) >= threshold)
        taken[leave] = k
        remaining &= ~leave
    predictions = np.stack([lg.argmax(axis=1) for lg in torch_logits])[taken, np.arange(n)]
    return predictions, taken


def test_runtime_agrees_with_pytorch_predictions_and_exits(segmented, torch_logits, thresholds, digits):
    runtime = EarlyExitRuntime(segmented, mode="reference")
    assert runtime.thresholds == thresholds and runtime.policy == "score_margin"
    onnx_logits = runtime.exit_logits(digits.val.images.numpy())
    assert all(np.abs(a - b).max() < 1e-4 for a, b in zip(onnx_logits, torch_logits, strict=True))
    result = runtime.run(digits.val.images.numpy())
    predictions, taken = _reference(torch_logits, thresholds)
    np.testing.assert_array_equal(result.exits, taken)
    np.testing.assert_array_equal(result.predictions, predictions)
    counts = np.bincount(taken, minlength=3)
    assert (counts > 0).all(), counts  # every exit is used, so the comparison means something
    # same decisions through the runtime's own reference and the split-level statistics of codesign.exits
    ref_predictions, ref_taken = exit_decisions(torch_logits, thresholds)
    np.testing.assert_array_equal(ref_taken, taken)
    np.testing.assert_array_equal(ref_predictions, predictions)
    stats = CachedExits.from_logits(torch_logits, digits.val.labels.numpy()).simulate((0, 1, 2), thresholds)
    split = runtime.run_split(digits.val, batch_size=100)
    assert split.accuracy == pytest.approx(stats.accuracy)
    assert split.exit_fractions == pytest.approx(stats.fractions)
    assert split.images_per_second > 0 and split.num_images == len(digits.val)


def test_batch_shrinks_at_every_exit(segmented, digits):
    runtime = EarlyExitRuntime(segmented, mode="reference")
    images = digits.val.images.numpy()
    result = runtime.run(images)
    counts = result.exit_counts
    n = len(images)
    assert result.segment_inputs == (n, n - counts[0], n - counts[0] - counts[1])
    # only the inputs that did not leave early reach the last segment
    assert result.segment_inputs[2] == counts[2] < n
    # the sessions really see the smaller batches
    seen = []
    for session in runtime.segments:
        original = session.run

        def spy(names, feeds, _original=original):
            seen.append(next(iter(feeds.values())).shape[0])
            return _original(names, feeds)

        session.run = spy
    runtime.run(images)
    assert tuple(seen) == result.segment_inputs
    static = runtime.run(images, static=True)
    assert static.segment_inputs == (n, n, n) and (static.exits == 2).all()
    assert all(t >= 0 for t in result.segment_seconds) and result.seconds > 0


def test_policies_and_threshold_overrides(segmented, torch_logits, digits):
    images = digits.val.images.numpy()
    everyone_leaves = EarlyExitRuntime(segmented, thresholds=(0.0, 0.0), mode="reference").run(images)
    assert (everyone_leaves.exits == 0).all() and everyone_leaves.segment_inputs == (len(images), 0, 0)
    for policy in ("max_prob", "entropy"):
        conf = confidence(torch_logits[0], policy)
        assert ((conf >= 0) & (conf <= 1 + 1e-6)).all()
        thresholds = (_mid_threshold(conf, 0.5), _mid_threshold(confidence(torch_logits[1], policy), 0.5))
        result = EarlyExitRuntime(segmented, thresholds=thresholds, policy=policy, mode="reference").run(
            images
        )
        predictions, taken = exit_decisions(torch_logits, thresholds, policy)
        np.testing.assert_array_equal(result.exits, taken)
        np.testing.assert_array_equal(result.predictions, predictions)
    one_hot = np.array([[10.0, -10.0, -10.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(confidence(one_hot, "entropy"), [1.0, 0.0], atol=1e-6)
    with pytest.raises(CodesignError, match="thresholds"):
        EarlyExitRuntime(segmented, thresholds=(0.5,))


def test_manifest_round_trip_and_files(segmented, trained_tiny, thresholds):
    spec, _ = trained_tiny
    model = SegmentedModel.load(segmented)
    data = json.loads((segmented / MANIFEST_NAME).read_text())
    assert SegmentedModel.load(segmented).to_manifest() == data
    assert model.exit_stages == (0, 1, 2) and model.segment_stages == ((0,), (1,), (2,))
    assert model.thresholds == thresholds and model.policy == "score_margin"
    assert model.input_shape == (1, 8, 8) and model.num_classes == 10 and model.spec_key == spec.key()
    assert sorted(p.name for p in segmented.iterdir()) == sorted(
        [MANIFEST_NAME, *model.segment_files, *model.head_files]
    )
    assert not [p for p in segmented.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left
    first = onnx.load(str(segmented / model.segment_files[0]))
    ops = {n.op_type for n in first.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    assert any(n.name.startswith("/stages.0/") for n in first.graph.node)
    head = onnx.load(str(segmented / model.head_files[1]))
    assert [i.name for i in head.graph.input] == ["features"]
    assert [o.name for o in head.graph.output] == ["logits"]
    assert any(n.name.startswith("/heads.1/") for n in head.graph.node)


def test_partial_exits_and_reexport_replaces_folder(trained_tiny, digits, tmp_path):
    spec, trained = trained_tiny
    partial_spec = replace(spec, exits=(False, True))
    model = load_shared_weights(build_model(partial_spec), trained.state_dict)
    folder = tmp_path / "partial"
    (folder).mkdir()
    export_segments(model, folder, thresholds=(0.3,))
    export_segments(model, folder, thresholds=(0.3,))  # replaces the earlier export atomically
    loaded = SegmentedModel.load(folder)
    assert loaded.exit_stages == (1, 2) and loaded.segment_stages == ((0, 1), (2,))
    assert [p.name for p in tmp_path.iterdir()] == ["partial"]
    with torch.no_grad():
        expected = [o.numpy() for o in model(digits.val.images[:50])]
    got = EarlyExitRuntime(folder).exit_logits(digits.val.images[:50].numpy())
    assert all(np.abs(a - b).max() < 1e-4 for a, b in zip(got, expected, strict=True))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep")
    with pytest.raises(CodesignError, match="other"):
        export_segments(model, tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "keep"


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_bad_folders_give_one_line_errors(segmented, tmp_path):
    with pytest.raises(CodesignError) as exc:
        SegmentedModel.load(tmp_path / "missing")
    assert "missing" in _one_line(exc) and "expected" in str(exc.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CodesignError) as exc:
        EarlyExitRuntime(tmp_path / "empty")
    assert "empty" in _one_line(exc) and "manifest.json" in str(exc.value)
    broken = tmp_path / "broken"
    shutil.copytree(segmented, broken)
    (broken / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(CodesignError) as exc:
        SegmentedModel.load(broken)
    assert str(broken / MANIFEST_NAME) in _one_line(exc) and "JSON" in str(exc.value)
    data = json.loads((segmented / MANIFEST_NAME).read_text())
    for field, value, needle in [
        ("thresholds", [0.1], "thresholds"),
        ("policy", "coin_flip", "policy"),
        ("segments", data["segments"][:2], "segments"),
    ]:
        (broken / MANIFEST_NAME).write_text(json.dumps({**data, field: value}))
        with pytest.raises(CodesignError) as exc:
            SegmentedModel.load(broken)
        assert needle in _one_line(exc) and "expected" in str(exc.value) and MANIFEST_NAME in str(exc.value)
    (broken / MANIFEST_NAME).write_text(json.dumps(data))
    (broken / data["heads"][2]["file"]).unlink()
    with pytest.raises(CodesignError) as exc:
        SegmentedModel.load(broken)
    assert "heads[2].file" in _one_line(exc) and data["heads"][2]["file"] in str(exc.value)
    runtime = EarlyExitRuntime(segmented)
    with pytest.raises(CodesignError) as exc:
        runtime.run(np.zeros((2, 1, 28, 28), dtype=np.float32))
    assert "input_shape" in _one_line(exc)


def _main(argv: list[str]) -> int:
    """`codesign infer` through the real command line."""
    from codesign.cli.main import main

    return main(argv)


def test_infer_command_end_to_end(segmented, capsys, thresholds):
    assert _main(["infer", str(segmented), "--split", "val", "--batch-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "early exit" in out and "static" in out and "images/s" in out
    assert (
        out.count("speed-up") == 1 and "as the cost model defines it" in out
    )  # one speed-up, one definition
    speed_up = float(re.search(r"speed-up ([\d.]+)x", out).group(1))
    means = [float(v) for v in re.findall(r"mean ([\d.]+) us", out)]
    assert speed_up == pytest.approx(means[1] / means[0], rel=0.02)
    assert f"thresholds {thresholds[0]:g} {thresholds[1]:g}" in out
    early_line = next(line for line in out.splitlines() if line.startswith("early exit"))
    fractions = [float(v) for v in early_line.split()[4:]]
    assert len(fractions) == 3 and abs(sum(fractions) - 1) < 2e-3 and fractions[0] > 0
    static_line = next(line for line in out.splitlines() if line.startswith("static"))
    assert [float(v) for v in static_line.split()[3:]] == [0.0, 0.0, 1.0]

    assert _main(["infer", str(segmented), "--thresholds", "0,0", "--policy", "max_prob"]) == 0
    out = capsys.readouterr().out
    assert "1.000 0.000 0.000" in out and "max_prob" in out

    assert _main(["infer", str(segmented), "--thresholds", "0.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "thresholds" in err[0] and "expected 2" in err[0]
    assert _main(["infer", str(segmented), "--thresholds", "a,b"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--thresholds" in err[0]
    assert _main(["infer", str(segmented.parent / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0] and "expected" in err[0]


def test_infer_rejects_dataset_of_other_shape(segmented, tmp_path, capsys):
    model = SegmentedModel.load(segmented)
    folder = tmp_path / "wrong"
    shutil.copytree(segmented, folder)
    data = model.to_manifest()
    data["input_shape"] = [1, 28, 28]
    (folder / MANIFEST_NAME).write_text(json.dumps(data))
    assert _main(["infer", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "input_shape" in err[0] and "digits" in err[0]


def test_exported_model_is_unchanged(trained_tiny, digits, tmp_path):
    spec, trained = trained_tiny
    model = load_shared_weights(build_model(spec), trained.state_dict)
    with torch.no_grad():
        before = [o.clone() for o in model(digits.val.images[:20])]
    export_segments(model, tmp_path / "m")
    assert not model.training
    with torch.no_grad():
        after = model(digits.val.images[:20])
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert SegmentedModel.load(tmp_path / "m").thresholds == spec.active_thresholds


def test_failed_export_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import brevitas.export

    calls = []

    def exporter_failing_on_head1(module, *args, **kwargs):
        calls.append(kwargs.get("export_path"))
        if len(calls) == 4:  # segment0, head0, segment1, then head1 fails
            raise RuntimeError("exporter exploded\nwith a long\nmulti-line trace")
        return real(module, *args, **kwargs)

    real = brevitas.export.export_onnx_qcdq
    monkeypatch.setattr(brevitas.export, "export_onnx_qcdq", exporter_failing_on_head1)
    model = build_model(tiny_spec()).eval()
    with pytest.raises(CodesignError) as exc:
        export_segments(model, tmp_path / "m")
    assert "head1" in _one_line(exc) and "ONNX export" in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_the_learned_policy_decides_the_same_in_onnxruntime_as_in_pytorch(
    trained_tiny, digits, torch_logits, tmp
):
    from codesign.exits import LearnedConfidence

    spec, trained = trained_tiny
    model = load_shared_weights(build_model(spec), trained.state_dict)
    train_logits = exit_logits(model, digits.train)  # fitted on the training split, never on validation
    fitted = LearnedConfidence.fit(train_logits, digits.train.labels.numpy(), spec.active_exit_stages)
    confidences = [
        fitted.confidence(lg, stage) for lg, stage in zip(torch_logits, spec.active_exit_stages, strict=True)
    ]
    assert all(((c >= 0) & (c <= 1)).all() for c in confidences)
    right = torch_logits[0].argmax(axis=1) == digits.val.labels.numpy()
    assert (
        confidences[0][right].mean() > confidences[0][~right].mean()
    )  # it ranks right above wrong on unseen data
    thresholds = (_mid_threshold(confidences[0], 0.6), _mid_threshold(confidences[1], 0.6))
    folder = export_segments(
        model, tmp / "learned", thresholds=thresholds, policy="learned", policy_model=fitted
    ).folder
    runtime = EarlyExitRuntime(folder)
    assert runtime.policy == "learned"
    result = runtime.run(digits.val.images.numpy())
    predictions, taken = exit_decisions(torch_logits, thresholds, "learned", spec.active_exit_stages, fitted)
    assert (np.bincount(taken, minlength=3) > 0).all()
    np.testing.assert_array_equal(result.exits, taken)
    np.testing.assert_array_equal(result.predictions, predictions)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    del manifest["policy_model"]
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(CodesignError, match="policy_model"):
        EarlyExitRuntime(folder)


@pytest.mark.parametrize("policy", ["score_margin", "max_prob", "entropy", "learned"])
def test_deployment_mode_decides_as_pytorch_does(policy, trained_tiny, digits, torch_logits, tmp):
    """Integer kernels and in-graph decisions, one call per exit reached: decisions agree with PyTorch on at
    least 99.5% of the inputs and accuracy stays within 0.2 point, at batch 1 and on a batch."""
    from codesign.deploy.measure import compare_modes
    from codesign.exits import LearnedConfidence

    spec, trained = trained_tiny
    model = load_shared_weights(build_model(spec), trained.state_dict)
    fitted = None
    if policy == "learned":
        fitted = LearnedConfidence.fit(
            exit_logits(model, digits.train), digits.train.labels.numpy(), (0, 1, 2)
        )
    conf = [confidence(lg, policy, stage, fitted) for lg, stage in zip(torch_logits, (0, 1, 2), strict=True)]
    thresholds = (_mid_threshold(conf[0], 0.6), _mid_threshold(conf[1], 0.6))
    folder = export_segments(
        model, tmp / policy, thresholds=thresholds, policy=policy, policy_model=fitted
    ).folder
    deployed, reference = EarlyExitRuntime(folder), EarlyExitRuntime(folder, mode="reference")
    assert deployed.mode == "deploy" and deployed.threads == 1
    images, labels = digits.val.images.numpy(), digits.val.labels.numpy()
    predictions, taken = exit_decisions(torch_logits, thresholds, policy, (0, 1, 2), fitted)
    assert (np.bincount(taken, minlength=3) > 0).all()
    one_by_one = [deployed.run(images[i : i + 1]) for i in range(len(images))]
    batch1 = np.array([r.predictions[0] for r in one_by_one]), np.array([r.exits[0] for r in one_by_one])
    batched = deployed.run(images)
    for got_predictions, got_exits in (batch1, (batched.predictions, batched.exits)):
        agree = ((got_predictions == predictions) & (got_exits == taken)).mean()
        assert agree >= 0.995, agree
        assert abs((got_predictions == labels).mean() - (predictions == labels).mean()) <= 0.002
    agreement = compare_modes(reference, deployed, digits.val)
    assert agreement.same_exit_and_class >= 0.995 and agreement.num_images == len(labels)
    static = deployed.run(images, static=True)  # the whole network in one graph, no exits
    final = torch_logits[2].argmax(axis=1)
    assert (static.predictions == final).mean() >= 0.995 and (static.exits == 2).all()
    assert deployed.run(images[:1], static=True).predictions[0] == static.predictions[0]


def test_temperatures_travel_with_the_network_and_decide_alike(trained_tiny, digits, torch_logits, tmp):
    """Temperatures saved in the manifest: the reference runtime, the deployment graph (a Div before the
    policy) and codesign.exits on the scaled logits take the same decisions; raw logits would not."""
    from codesign.evaluation.statistics import fit_temperatures

    spec, trained = trained_tiny
    model = load_shared_weights(build_model(spec), trained.state_dict)
    labels = digits.val.labels.numpy()
    temperatures = fit_temperatures(torch_logits, labels)
    assert all(t > 0 for t in temperatures) and len(temperatures) == 3
    scaled = [lg / t for lg, t in zip(torch_logits, temperatures, strict=True)]
    thresholds = (_mid_threshold(score_margin(scaled[0]), 0.6), _mid_threshold(score_margin(scaled[1]), 0.6))
    folder = export_segments(model, tmp / "scaled", thresholds=thresholds, temperatures=temperatures).folder
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["temperatures"] == pytest.approx(list(temperatures))
    predictions, taken = exit_decisions(scaled, thresholds)
    assert (np.bincount(taken, minlength=3) > 0).all()
    reference = EarlyExitRuntime(folder, mode="reference").run(digits.val.images.numpy())
    np.testing.assert_array_equal(reference.exits, taken)
    np.testing.assert_array_equal(reference.predictions, predictions)
    deployed = EarlyExitRuntime(folder).run(digits.val.images.numpy())
    assert ((deployed.exits == taken) & (deployed.predictions == predictions)).mean() >= 0.995
    _, unscaled = exit_decisions(torch_logits, thresholds)
    assert (unscaled != taken).any()  # the temperatures change decisions: the test can tell
    stats = CachedExits.from_logits(torch_logits, labels, temperatures=temperatures).simulate(
        (0, 1, 2), thresholds
    )
    assert stats.fractions == pytest.approx(tuple(np.bincount(taken, minlength=3) / len(taken)))
    manifest["temperatures"] = [1.0, -2.0, 1.0]
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(CodesignError, match="temperatures"):
        EarlyExitRuntime(folder)
