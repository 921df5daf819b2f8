"""Does early exit pay, and how close to the limit: the static baseline's ratios, the oracle bound, exit
overhead, and exit heads with their own bit widths."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from codesign.cli.main import main
from codesign.cost.exits import expected_cost
from codesign.cost.graph import parse_onnx
from codesign.cost.records import ExitCost, ExpectedCost
from codesign.deploy.qcdq import export_qcdq
from codesign.deploy.segments import SegmentedModel
from codesign.evaluation.result import CandidateResult
from codesign.exits import CachedExits, ExitStats
from codesign.network.model import build_model
from codesign.runs.baseline import compare_fronts
from codesign.spec import ExitBranch
from tests.conftest import explore_argv, tiny_spec


def test_oracle_is_the_cheapest_assignment_that_reaches_the_accuracy():
    # 3 exits, 5 inputs: input 0 right at exit 0; 1 only at exit 1; 2 at exits 1 and 2; 3 only final; 4 nowhere
    correct = np.array(
        [
            [True, False, False, False, False],
            [True, True, True, False, False],
            [False, False, True, True, False],
        ]
    )
    cached = CachedExits(confidences={"score_margin": np.zeros((3, 5))}, correct=correct)
    exits = [
        ExitCost(0, 10.0, 1, 0, head_energy_pj=2.0),
        ExitCost(1, 30.0, 3, 0, head_energy_pj=3.0),
        ExitCost(2, 60.0, 6, 0),
    ]
    energies = [e.energy_pj for e in exits]
    best = cached.oracle((0, 1, 2), energies)  # as accurate as any assignment can be
    assert best.fractions == (2 / 5, 2 / 5, 1 / 5)  # input 4, right nowhere, stays at the cheapest exit
    assert best.accuracy == pytest.approx(4 / 5)
    cost = expected_cost(exits, best.fractions)
    assert cost.energy_pj == pytest.approx((10 * 2 + 30 * 2 + 60 * 1) / 5)
    # overhead: heads of exits the input went past: head0 for 3 of 5 inputs, head1 for 1 of 5
    assert cost.exit_overhead_pj == pytest.approx(2.0 * 3 / 5 + 3.0 * 1 / 5)
    # at 60%: the two inputs that are cheapest to make right (1 and 2, +20 each) move; 3 (+50) does not
    three = cached.oracle((0, 1, 2), energies, 0.6)
    assert three.accuracy == pytest.approx(0.6) and three.fractions == (3 / 5, 2 / 5, 0.0)
    # brute force over all 3^5 assignments: nothing reaching 60% is cheaper
    import itertools

    cheapest = min(
        sum(energies[k] for k in choice) / 5
        for choice in itertools.product(range(3), repeat=5)
        if sum(correct[k, i] for i, k in enumerate(choice)) >= 3
    )
    assert expected_cost(exits, three.fractions).energy_pj == pytest.approx(cheapest)


def test_a_network_without_early_exits_has_oracle_equal_to_achieved_equal_to_static(
    trained_tiny, tmp, edge_tpu, digits
):
    from codesign.cost.engine import CostEngine
    from codesign.cost.settings import CostOptions
    from codesign.evaluation.evaluator import EvaluationSettings, Evaluator
    from codesign.evaluation.finalize import with_test
    from codesign.network.settings import TrainingConfig

    evaluator = Evaluator(
        digits,
        CostEngine(edge_tpu, CostOptions(lpf_limit=2)),
        EvaluationSettings(training=TrainingConfig(epochs=2)),
    )
    result = with_test(evaluator, evaluator.evaluate(tiny_spec(exits=(False, False))))
    assert result.num_exits == 1
    assert result.expected_oracle_test.energy_pj == result.expected_test.energy_pj == result.static.energy_pj
    assert result.oracle_test.accuracy == result.test.accuracy == result.static_test_accuracy
    assert result.expected_test.exit_overhead_pj == 0.0
    early = with_test(evaluator, evaluator.evaluate(tiny_spec(exits=(True, True))))
    assert early.expected_oracle_test.energy_pj <= early.expected_test.energy_pj
    assert early.oracle_test.accuracy >= early.test.accuracy


def _result(
    key_seed: int,
    val: float,
    test: float,
    energy: float,
    latency: float = 100.0,
    early: bool = False,
    early_share: float = 0.4,
) -> CandidateResult:
    """A returned network's record for the front comparison; `early`: with an early exit before its final one,
    which takes `early_share` of the inputs."""
    spec = replace(tiny_spec(), thresholds=(0.1 * key_seed, 0.2))
    fractions = (early_share, 1 - early_share) if early else (1.0,)
    stats = lambda accuracy: ExitStats(accuracy, fractions, (accuracy,) * len(fractions))  # noqa: E731
    cost = ExpectedCost(energy, latency, latency, 0)
    return CandidateResult(
        spec=spec,
        val=stats(val),
        test=stats(test),
        exits=((ExitCost(0, energy / 4, latency / 4, 0),) if early else ())
        + (ExitCost(2, energy, latency, 0),),
        expected_val=cost,
        expected_test=cost,
        static=ExitCost(2, energy, latency, 0),
        static_val_accuracy=val,
        static_test_accuracy=test,
        clock_hz=1e9,
    )


def test_baseline_ratios_equal_a_hand_computation_from_the_two_fronts():
    static = [
        _result(1, 0.95, 0.940, 1000.0, 500),
        _result(2, 0.97, 0.962, 4000.0, 900),
        _result(3, 0.93, 0.925, 300.0, 200),
    ]
    early = [
        _result(4, 0.96, 0.963, 1500.0, 300, early=True),
        _result(5, 0.95, 0.955, 900.0, 250, early=True),
        _result(6, 0.90, 0.90, 100.0, 50, early=True),
    ]
    rows = compare_fronts(early, static)
    # static best = the test accuracy of its most accurate network on validation: 0.962
    assert [r.accuracy_at_least for r in rows] == pytest.approx([0.962, 0.957, 0.952])
    # 0.962: static 4000 nJ (only one), early exit 1500 (0.963) -> 0.375
    assert rows[0].energy_ratio == pytest.approx(1500 / 4000) and rows[0].latency_ratio == pytest.approx(
        300 / 900
    )
    # 0.957: static 4000, early 1500 (0.955 falls short) -> 0.375
    assert rows[1].energy_ratio == pytest.approx(1500 / 4000)
    # 0.952: static still only 4000 (0.940 short), early 900 (0.955) -> 0.225
    assert rows[2].energy_ratio == pytest.approx(900 / 4000) and rows[2].latency_ratio == pytest.approx(
        250 / 900
    )
    assert compare_fronts(early, []) == []
    assert rows[2].verdict == "early exit pays: 78% less energy, 40% of inputs leave early"
    assert rows[2].early_exit_share == pytest.approx(0.4)
    # exit heads that no test input takes: the network is its static twin, and early exit does not pay
    idle = compare_fronts([_result(9, 0.97, 0.962, 2000.0, early=True, early_share=0.0)], static)[0]
    assert idle.energy_ratio == pytest.approx(0.5) and idle.early_exit_has_exits is False
    assert idle.verdict.startswith(
        "early exit does not pay: the cheapest network here sends no input out early"
    )
    same = compare_fronts(static, static)[0]
    assert same.energy_ratio == 1.0 and same.verdict.startswith("early exit does not pay")
    # the early-exit search found a cheaper static network: a better static search, not early exit paying
    better_static = compare_fronts([_result(8, 0.97, 0.962, 2000.0)], static)[0]
    assert better_static.energy_ratio == pytest.approx(0.5) and better_static.early_exit_has_exits is False
    assert better_static.verdict.startswith(
        "early exit does not pay: the cheapest network here sends no input out early"
    )
    # an early-exit front that lost the level on test still has the static networks (exits off): never worse
    lost = compare_fronts([_result(7, 0.99, 0.90, 10.0)], static)[0]
    assert lost.energy_ratio == 1.0 and lost.early_exit_key == lost.static_key
    assert lost.verdict.startswith("early exit does not pay")


def test_exit_head_bit_widths_reach_the_exported_onnx_and_the_costs(tmp: Path, edge_tpu):
    from codesign.cost.engine import CostEngine
    from codesign.cost.network import network_costs
    from codesign.cost.settings import CostOptions

    plain = tiny_spec(bits=(8, 8, 8))
    own = replace(
        plain,
        branches=(ExitBranch(weight_bits=4, act_bits=4), ExitBranch(weight_bits=4, act_bits=4), ExitBranch()),
    )
    assert own.head_bits(0) == (4, 4) and own.head_bits(2) == (8, 8) and plain.head_bits(0) == (8, 8)
    assert own.key() != plain.key() and "W4A4" in own.describe_exits()
    costs = {}
    for name, spec in (("plain", plain), ("own", own)):
        layers = parse_onnx(export_qcdq(build_model(spec), tmp / f"{name}.onnx")).layers
        heads = [layer for layer in layers if layer.segment in ("head0", "head1")]
        backbone = [layer for layer in layers if layer.segment.startswith("stage")]
        expected = 4 if name == "own" else 8
        assert {layer.weight_bits for layer in heads} == {expected}
        assert {layer.weight_bits for layer in backbone} == {8}
        items = network_costs(layers, [], CostEngine(edge_tpu, CostOptions(lpf_limit=2)))
        costs[name] = sum(i.energy_pj for i in items if i.segment.startswith("head0"))
    assert costs["own"] < costs["plain"]


def test_explore_with_a_static_baseline_writes_the_comparison(tmp: Path, capsys):
    workload = tmp / "w.yaml"
    workload.write_text(
        """
name: baseline-test
dataset: digits
space:
  stages:
    - {depth: 1, width: [8, 16], stride: 1, weight_bits: 8, act_bits: 8}
    - {depth: 1, width: 16, stride: 2, weight_bits: [4, 8], act_bits: 8}
    - {depth: 1, width: [16, 32], stride: 2, weight_bits: 8, act_bits: 8}
  exit_branches: {weight_bits: [4, 8]}
  policies: [learned]
  threshold_tuning: {max_accuracy_drop: 0.01}
training:
  supernet: {epochs: 2, random_subnets: 1}
  finetune: {head_steps: 5, final_epochs: 0.05}
cost: {lpf_limit: 2}
search: {population: 6, generations: 2, seed: 4, objectives: [accuracy, energy, exit_overhead]}
"""
    )
    run = tmp / "run"
    args = explore_argv(workload, run, tmp / "c.sqlite", "-q", "-j", "1")
    assert main([*args, "--baseline"]) == 0
    out = capsys.readouterr().out
    assert "static baseline" in out and "early exit against the static baseline" in out
    baseline = pd.read_csv(run / "baseline.csv")
    assert len(baseline) == 3 and (run / "baseline" / "pareto.csv").is_file()
    static_front = pd.read_csv(run / "baseline" / "pareto.csv")
    assert (static_front["num_exits"] == 1).all()
    pareto = pd.read_csv(run / "pareto.csv")
    for _, row in baseline.dropna(subset=["energy_ratio"]).iterrows():  # the ratio of the two fronts' rows
        options = pd.concat([pareto, static_front]).drop_duplicates("key")  # static networks: exits off
        early = options.set_index("key").loc[row["early_exit_key"], "expected_energy_pj"]
        static = static_front.set_index("key").loc[row["static_key"], "expected_energy_pj"]
        assert row["energy_ratio"] == pytest.approx(early / static)
    assert {"oracle_energy_pj", "energy_vs_oracle", "oracle_accuracy", "exit_overhead_pj"} <= set(
        pareto.columns
    )
    assert (pareto["energy_vs_oracle"] >= 1 - 1e-9).all()  # no policy beats the oracle at its accuracy
    # the oracle reaches the achieved accuracy; more only where every input at the first exit already does
    assert (pareto["oracle_accuracy"] >= pareto["accuracy"] - 1e-9).all()
    above = pareto[pareto["oracle_accuracy"] > pareto["accuracy"] + 1e-9]
    assert all(float(f.split()[0]) == 1.0 for f in above["oracle_exit_fractions"])
    assert {"weight_bytes_on_chip", "weight_bytes_streamed", "weight_load_energy_pj"} <= set(pareto.columns)
    kept = pareto["weight_bytes_on_chip"] + pareto["weight_bytes_streamed"]
    assert kept.to_numpy() == pytest.approx(pareto["weight_bytes"].to_numpy())
    assert (pareto.loc[pareto["num_exits"] > 1, "exits"].str.contains("@learned")).all()
    for folder in pareto.loc[pareto["num_exits"] > 1, "segments"]:  # the fitted policy travels with the model
        segmented = SegmentedModel.load(run / folder)
        assert segmented.policy == "learned" and segmented.policy_model is not None
        assert (
            main(["infer", str(run / folder), "--split", "val", "--repeats", "1", "--latency-images", "50"])
            == 0
        )
    (run / "baseline.csv").unlink()
    assert main(["report", str(run)]) == 0  # rebuilt from the two run stores
    assert pd.read_csv(run / "baseline.csv").equals(baseline)


CONTAINED = """
name: contained
dataset: digits
space:
  stages:
    - {depth: 1, width: [8, 16], stride: 1, weight_bits: 8, act_bits: 8}
    - {depth: 1, width: 16, stride: 2, weight_bits: [4, 8], act_bits: 8}
    - {depth: 1, width: [16, 32], stride: 2, weight_bits: 8, act_bits: 8}
  exit_branches: {weight_bits: [4, 8]}
  threshold_tuning: {max_accuracy_drop: 0.01}
training:
  supernet: {epochs: 2, random_subnets: 1, head_epochs: 1}
  finetune: {head_steps: 5, final_epochs: 0.05}
cost: {lpf_limit: 2}
search: {population: 6, generations: 2, seed: 4}
"""


def test_early_exit_on_the_static_backbone_contains_the_static_search(tmp, capsys, monkeypatch):
    """One supernet for both searches; the static search's returned networks seed the early-exit search and
    come out of it unchanged; every early-exit network's final exit is its static counterpart's; so the
    early-exit front never loses to the static one. Each static network is fitted once for both searches."""
    from codesign.evaluation import weights
    from codesign.runs.store import RunStore

    fitted = []
    fit = weights.static_weights

    def counted(static, *args, **kwargs):
        fitted.append((static.stages, static.resolution, static.branches[-1]))
        return fit(static, *args, **kwargs)

    monkeypatch.setattr(weights, "static_weights", counted)
    workload = tmp / "contained.yaml"
    workload.write_text(CONTAINED)
    run = tmp / "run"
    assert (
        main([*explore_argv(workload, run, tmp / "cache" / "c.sqlite", "-q", "-j", "1"), "--baseline"]) == 0
    )
    out = capsys.readouterr().out
    static_file = next(line for line in out.splitlines() if line.startswith("supernet: training once"))
    supernet = static_file.rsplit("-> ", 1)[1]
    assert f"supernet: reusing {supernet}" in out  # the early-exit search's backbone is the static one
    assert (
        out.count("supernet: training once") == 1
        and "exit heads: training on the frozen static supernet" in out
    )
    with RunStore.of_run(run) as store:
        early = {r.spec.key(): r for r in store.results()}
    with RunStore.of_run(run / "baseline") as store:
        static = {r.spec.key(): r for r in store.results()}
        static_front = [store.get(key) for key in store.front()]
    for (
        seed
    ) in static_front:  # the seeds, evaluated again in the early-exit search: the same network, bit for bit
        twin = early[seed.spec.key()]
        assert (twin.val.accuracy, twin.expected_val.energy_pj) == (
            seed.val.accuracy,
            seed.expected_val.energy_pj,
        )
    by_backbone = {(r.spec.stages, r.spec.resolution): r for r in static.values()}
    compared = 0
    for result in early.values():
        counterpart = by_backbone.get((result.spec.stages, result.spec.resolution))
        if counterpart is not None:  # its final exit is exactly the static network's
            assert result.static_val_accuracy == counterpart.val.accuracy
            assert result.static.energy_pj == pytest.approx(counterpart.expected_val.energy_pj, rel=1e-12)
            compared += 1
    assert compared >= len(static_front)
    baseline = pd.read_csv(run / "baseline.csv")
    assert (baseline["energy_ratio"].dropna() <= 1 + 1e-9).all()
    assert baseline["early_exit_key"].notna().all()  # every level reached by the early-exit front
    # the static search fitted its networks, the early-exit search read them back (run/weights/static)
    assert fitted and len(fitted) == len(set(fitted))
    assert len(list((run / "weights" / "static").glob("static-*.pt"))) == len(fitted)
    shared = {(r.spec.stages, r.spec.resolution) for r in early.values()} & set(by_backbone)
    assert len(shared) >= len(static_front)


def test_final_exit_stays_the_static_networks_through_fine_tuning(tmp):
    """An early-exit network and its exits-off counterpart, each fine-tuned as a returned network: the
    early-exit network's final exit is exactly as accurate as the static network, before and after."""
    from codesign.config.workload import load_workload
    from codesign.evaluation.finalize import finalize
    from codesign.runs.setup import prepare_run

    workload = tmp / "contained.yaml"
    workload.write_text(CONTAINED)
    setup = prepare_run(load_workload(workload))
    cache = tmp / "cache" / "c.sqlite"
    evaluator = setup.evaluator(
        setup.recipe(tmp / "run", cache, setup.supernet(tmp / "supernets", report=lambda line: None))
    )
    spec = setup.space.decode([len(g.choices) - 1 for g in setup.space.genes])  # every exit on
    assert len(spec.active_exit_stages) == 3
    early, static = evaluator.evaluate(spec), evaluator.evaluate(spec.without_early_exits())
    assert early.static_val_accuracy == static.val.accuracy and early.static == static.exits[-1]
    (early_final, _), (static_final, _) = finalize(evaluator, early), finalize(evaluator, static)
    assert early_final.static_test_accuracy == static_final.test.accuracy
    assert early_final.static_val_accuracy == static_final.val.accuracy
