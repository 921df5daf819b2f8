"""Search strategies: algorithms by name, constraints, surrogate-assisted search (issue 5)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pymoo.core.problem import Problem
from pymoo.optimize import minimize

from codesign.cli.main import main
from codesign.config.search import parse_search
from codesign.config.workload import parse_workload
from codesign.errors import CodesignError
from codesign.hardware.memory import on_chip_weight_bytes
from codesign.hardware.target import load_hardware
from codesign.network.supernet import Supernet
from codesign.runs.store import RunStore
from codesign.search.algorithms import ALGORITHMS, make_algorithm
from codesign.search.operators import ResetMutation
from codesign.search.settings import Constraints, SearchSettings
from codesign.search.surrogate import ObjectivePredictors, cross_validated_tau

from .conftest import explore_argv

SPACE = {"stages": [{"depth": 1, "width": [8, 16], "stride": 1}, {"depth": 1, "width": 16, "stride": 2}]}


def test_search_section_parses_algorithm_constraints_and_surrogate():
    workload = parse_workload(
        {
            "space": SPACE,
            "search": {
                "population": 10,
                "generations": 4,
                "algorithm": "ctaea",
                "constraints": {"min_accuracy": 0.9, "max_latency_ms": 2, "weights_on_chip": True},
                "surrogate": {
                    "initial": 8,
                    "per_iteration": 3,
                    "iterations": 5,
                    "predictors": ["gp", "tree"],
                },
            },
        },
        "w.yaml",
    )
    search = workload.search
    assert search.algorithm == "ctaea"
    assert search.constraints.active == ("min_accuracy", "max_latency_ms", "weights_on_chip")
    assert search.surrogate.predictors == ("gp", "tree") and search.budget == 8 + 5 * 3
    # `surrogate: true` keeps the algorithm's budget of candidates
    plain = parse_workload(
        {"space": SPACE, "search": {"population": 10, "generations": 4, "surrogate": True}}, "w"
    )
    assert plain.search.surrogate.budget == 40 == SearchSettings(population=10, generations=4).budget
    # command-line overrides go through the same validation and merge with the file's constraints
    merged = parse_search("command line", {"constraints": {"max_energy_uj": 1.5}}, search)
    assert merged.constraints.min_accuracy == 0.9 and merged.constraints.max_energy_uj == 1.5
    assert SearchSettings.from_dict(__import__("dataclasses").asdict(merged)) == merged


@pytest.mark.parametrize(
    ("search", "field"),
    [
        ({"algorithm": "cmaes"}, "search.algorithm"),
        ({"constraints": {"min_accuracy": 90}}, "search.constraints.min_accuracy"),
        ({"constraints": {"weights_on_chip": "yes"}}, "search.constraints.weights_on_chip"),
        ({"constraints": {"max_ram": 3}}, "search.constraints.max_ram"),
        ({"surrogate": {"predictors": ["svm"]}}, "search.surrogate.predictors"),
        ({"surrogate": {"initial": 2}}, "search.surrogate.initial"),
        ({"surrogate": [1]}, "search.surrogate"),
    ],
)
def test_bad_search_settings_name_file_and_field(search, field):
    with pytest.raises(CodesignError) as error:
        parse_workload({"space": SPACE, "search": search}, "w.yaml")
    message = str(error.value)
    assert message.startswith(f"w.yaml: {field}") and "expected" in message and "\n" not in message


class _Toy(Problem):
    """Two conflicting objectives over 5 integer genes in 0..3; the front is known: sum(x) trades off."""

    def __init__(self):
        super().__init__(n_var=5, n_obj=2, xl=np.zeros(5), xu=np.full(5, 3), vtype=int)

    def _evaluate(self, X, out, *args, **kwargs):
        X = np.round(X)
        out["F"] = np.column_stack([X.sum(axis=1), (3 - X).sum(axis=1) + 0.1 * X[:, 0]])


@pytest.mark.parametrize("name", ALGORITHMS)
def test_every_algorithm_runs_on_integers_and_improves(name):
    result = minimize(_Toy(), make_algorithm(name, 20, 2, seed=0), ("n_gen", 15), seed=0)
    X = result.pop.get("X")
    assert np.allclose(X, np.round(X)) and X.min() >= 0 and X.max() <= 3
    # the true front: for each gene sum s, x0 as small as possible -> (s, 15 - s + 0.1 max(0, s - 12))
    true_front = {(s, round(15 - s + 0.1 * max(0, s - 12), 6)) for s in range(16)}
    found = {(round(a, 6), round(b, 6)) for a, b in result.F}
    assert len(found & true_front) >= 12, sorted(found)


def test_reset_mutation_changes_genes_to_other_valid_choices():
    problem = _Toy()
    X = np.ones((200, 5))
    mutated = ResetMutation(rate=2.0)._do(problem, X, random_state=np.random.default_rng(0))
    changed = mutated != X
    assert changed.any() and set(np.unique(mutated[changed])) <= {0.0, 2.0, 3.0}
    assert abs(changed.mean() - 2 / 5) < 0.05


def test_predictor_selection_ranks_a_smooth_function_and_reports_every_kind():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 4, size=(40, 4)) / 3
    y_smooth = X @ np.array([3.0, -1.0, 0.5, 2.0])
    y_step = (X[:, 0] > 0.5).astype(float) + 0.01 * X[:, 1]
    predictors = ObjectivePredictors(("smooth", "step"), ("rbf", "mlp", "tree", "gp"), seed=0).fit(
        X, np.column_stack([y_smooth, y_step])
    )
    smooth, step = predictors.selections
    assert set(smooth.taus) == {"rbf", "mlp", "tree", "gp"}
    assert smooth.tau == max(smooth.taus.values()) > 0.9
    assert step.tau > 0.5
    X_new = rng.integers(0, 4, size=(30, 4)) / 3
    predicted = predictors.predict(X_new)
    assert predicted.shape == (30, 2)
    assert np.corrcoef(predicted[:, 0], X_new @ np.array([3.0, -1.0, 0.5, 2.0]))[0, 1] > 0.95
    # a target that is pure noise is not ranked well by anything
    assert cross_validated_tau("tree", X, rng.normal(size=40), folds=5, seed=0) < 0.4


def test_weight_capacity_counts_every_core():
    single, quad = load_hardware("edge_tpu_like"), load_hardware("edge_tpu_x4")
    assert on_chip_weight_bytes(single) == pytest.approx(32 * 1024, rel=1e-3)
    assert on_chip_weight_bytes(quad) == pytest.approx(4 * on_chip_weight_bytes(single))


SURROGATE_WORKLOAD = """
name: tiny-surrogate
dataset: digits
accelerator: edge_tpu_like
space:
  stages:
    - {depth: 1, width: [8, 16], kernel: 3, stride: 1, weight_bits: [4, 8], act_bits: 8}
    - {depth: 1, width: [16, 32], kernel: 3, stride: 2, weight_bits: 8, act_bits: 8}
    - {depth: 1, width: 32, kernel: 3, stride: 2, weight_bits: [4, 8], act_bits: 8}
  exit_fractions: [0.1, 0.3, 0.6]
training:
  supernet: {epochs: 3}
  finetune: {final_epochs: 0}
cost: {opt: EDP, lpf_limit: 3}
search:
  seed: 2
  algorithm: spea2
  constraints: {min_accuracy: 0.8, weights_on_chip: true}
  surrogate: {initial: 6, per_iteration: 3, iterations: 2, predictors: [rbf, tree, gp]}
"""


def test_surrogate_explore_with_constraints_stores_predictor_quality_and_resumes(tmp: Path, capsys):
    workload = tmp / "w.yaml"
    workload.write_text(SURROGATE_WORKLOAD)
    run_dir = tmp / "run"
    args = explore_argv(workload, run_dir, tmp / "c.sqlite")
    assert main([*args, "-q", "-j", "1"]) == 0
    out = capsys.readouterr().out
    assert "surrogate round 2" in out
    store = RunStore(run_dir / "run.db")
    assert len(store) == 6 + 2 * 3  # every candidate asked for is a distinct network, evaluated once
    rounds = pd.read_csv(run_dir / "surrogate.csv")
    assert sorted(rounds["round"].unique()) == [1, 2]
    assert set(rounds["target"]) == {"accuracy", "energy", "latency", "min_accuracy", "weights_on_chip"}
    assert set(rounds["predictor"]) <= {"rbf", "tree", "gp"} and rounds["cv_kendall_tau"].between(-1, 1).all()
    candidates = pd.read_csv(run_dir / "candidates.csv")
    pareto = pd.read_csv(run_dir / "pareto.csv")
    assert len(pareto) >= 1 and candidates["feasible"].any()
    assert np.allclose(candidates["min_accuracy_violation"], (0.8 - candidates["accuracy_val"]) / 0.8)
    assert np.allclose(
        candidates["weights_on_chip_violation"], candidates["weight_bytes"] / (32 * 1024) - 1, rtol=1e-3
    )
    feasible_keys = set(candidates.loc[candidates["feasible"], "key"])
    assert set(pareto["key"]) <= feasible_keys and (pareto["weight_bytes"] <= 32 * 1024).all()
    import codesign

    frame = codesign.load_run(run_dir)  # the public API's view of the same run
    assert len(frame) == len(candidates) and frame["pareto"].sum() == len(pareto)
    assert set(frame.loc[frame["pareto"], "key"]) == set(pareto["key"])
    volumes = pd.read_csv(run_dir / "hypervolume.csv")
    assert len(volumes) == 3 and volumes["hypervolume"].is_monotonic_increasing  # archive + 2 rounds

    # Again: the rounds are retraced from the store without a single new evaluation, same front.
    assert main([*args, "-q", "-j", "1"]) == 0
    out = capsys.readouterr().out
    assert "evaluations: 0 new" in out
    assert pd.read_csv(run_dir / "pareto.csv")["key"].tolist() == pareto["key"].tolist()
    assert len(pd.read_csv(run_dir / "surrogate.csv")) == len(rounds)

    # A constraint nothing meets (the file's own dropped): a clear line, empty Pareto table, candidates listed.
    assert main([*args, "-q", "-j", "1", "--no-constraints", "--max-energy-uj", "1e-9"]) == 0
    out = capsys.readouterr().out
    assert "no evaluated candidate meets the constraints" in out and "expected energy <= 1e-09 uJ" in out
    assert len(pd.read_csv(run_dir / "candidates.csv")) >= len(candidates)
    after = pd.read_csv(run_dir / "candidates.csv")
    assert not after["feasible"].any()
    assert "max_energy_uj_violation" in after.columns and "min_accuracy_violation" not in after.columns
    assert Constraints(max_energy_uj=1e-9).active == ("max_energy_uj",)


def test_predictor_selection_survives_a_kind_that_cannot_fit():
    # two identical binary genes: affinely dependent features, on which an RBF with a linear tail is singular
    rng = np.random.default_rng(1)
    column = rng.integers(0, 2, size=12).astype(float)
    X = np.column_stack([column, column, rng.integers(0, 2, size=12), rng.integers(0, 3, size=12) / 2])
    y = X @ np.array([1.0, 1.0, 2.0, -1.0]) + 0.01 * rng.normal(size=12)
    predictors = ObjectivePredictors(("y",), ("rbf", "tree"), seed=0).fit(X, y[:, None])
    taus = predictors.selections[0].taus
    assert taus["rbf"] > -1.0 and taus["tree"] > -1.0  # every fold fitted (-1 marks a kind that failed)
    assert predictors.predict(X).shape == (12, 1)


def test_surrogate_budget_follows_population_and_generations_on_the_command_line():
    base = parse_workload(
        {"space": SPACE, "search": {"population": 2, "generations": 5, "surrogate": True}}, "w"
    )
    assert base.search.surrogate.initial == 4  # never fewer than 4 initial evaluations
    longer = parse_search("command line", {"generations": 20}, base.search)
    assert longer.surrogate.budget >= 2 * 20 - longer.surrogate.per_iteration
    assert longer.surrogate.budget > base.search.surrogate.budget


def test_spatial_mapping_with_several_factors_follows_the_array():
    from codesign.hardware.overrides import scale_spatial_mapping

    mapping = [
        {"name": "Conv", "spatial_mapping": {"D1": ["K, 14"], "D2": ["FY, 3", "C, 4"], "D3": ["OX, 2"]}}
    ]
    grown = scale_spatial_mapping(mapping, ["D1", "D2", "D3"], [14, 12, 2], [14, 24, 2])
    assert grown[0]["spatial_mapping"]["D2"] == ["FY, 3", "C, 8"] and grown[0]["spatial_mapping"]["D1"] == [
        "K, 14"
    ]
    shrunk = scale_spatial_mapping(mapping, ["D1", "D2", "D3"], [14, 12, 2], [7, 6, 2])
    assert shrunk[0]["spatial_mapping"]["D1"] == ["K, 7"] and shrunk[0]["spatial_mapping"]["D2"] == [
        "FY, 3",
        "C, 2",
    ]
    assert mapping[0]["spatial_mapping"]["D2"] == ["FY, 3", "C, 4"]  # the input is not modified


def test_static_supernet_trains_backbones_without_exit_heads():
    from codesign.data.registry import load_dataset
    from codesign.network.settings import SupernetConfig
    from codesign.network.supernet import train_supernet

    data = {"space": {**SPACE, "exit_branches": {"pool": [1, 2]}, "final_head": {"pool": 1}}}
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

    space = {**SPACE, "threshold_tuning": {"max_accuracy_drop": [0.0, 0.01]}}
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
        parse_workload({"space": {**SPACE, "early_exits": "no"}}, "w.yaml")
    assert str(error.value).startswith("w.yaml: space.early_exits") and "true or false" in str(error.value)


STATIC_WORKLOAD = """
name: tiny-static
dataset: digits
accelerator: edge_tpu_like
space:
  stages:
    - {depth: 1, width: [8, 16], kernel: 3, stride: 1, weight_bits: [4, 8], act_bits: 8}
    - {depth: 1, width: 16, kernel: 3, stride: 2, weight_bits: 8, act_bits: 8}
    - {depth: 1, width: 32, kernel: 3, stride: 2, weight_bits: [4, 8], act_bits: 8}
  exit_branches: {convs: [0, 1], pool: [1, 2]}   # heads the static supernet holds but never trains
  final_head: {pool: 1}
  threshold_tuning: {max_accuracy_drop: 0.01}
training:
  supernet: {epochs: 2}
  finetune: {final_epochs: 0}
cost: {opt: EDP, lpf_limit: 3}
search: {population: 4, generations: 2, seed: 1, objectives: [accuracy, energy]}
"""


def test_explore_static_searches_networks_without_early_exits_and_resumes_static(tmp: Path, capsys):
    workload = tmp / "w.yaml"
    workload.write_text(STATIC_WORKLOAD)
    run_dir = tmp / "run"
    cache = ["--cost-cache", str(tmp / "c.sqlite"), "-q", "-j", "1"]
    assert main(["explore", "-w", str(workload), "--run-dir", str(run_dir), "--static", *cache]) == 0
    candidates = pd.read_csv(run_dir / "candidates.csv")
    assert len(candidates) >= 2 and (candidates["num_exits"] == 1).all()
    assert (candidates["energy_vs_static"] == 1.0).all()  # a static network is its own counterpart
    assert '"early_exits": false' in (run_dir / "config.json").read_text()
    capsys.readouterr()
    assert main(["explore", "--resume", str(run_dir), *cache]) == 0  # resumes as the static search it was
    assert "evaluations: 0 new" in capsys.readouterr().out


def test_strided_exit_head_that_leaves_too_small_a_map_to_pool_gets_one_line_error(tmp: Path):
    from codesign.config.workload import load_workload
    from codesign.data.registry import load_dataset
    from codesign.hardware.target import load_hardware
    from codesign.runs.setup import prepare_space

    path = tmp / "w.yaml"
    path.write_text(
        "space:\n  stages:\n    - {depth: 1, width: 8, stride: 2}\n    - {depth: 1, width: 8, stride: 2}\n"
        "    - {depth: 1, width: 8, stride: 1}\n"
        "  exit_branches: {convs: 1, stride: [1, 2], pool: 2}\n"
    )
    workload = load_workload(path)  # digits: 8x8 -> 4x4 -> 2x2; a stride-2 head after stage 1 sees 1x1
    with pytest.raises(CodesignError) as error:
        prepare_space(workload, load_dataset("digits", seed=0), load_hardware("edge_tpu_like"))
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "space.exit_branches.stride" in message
    assert "1x1" in message


def test_a_static_network_encodes_into_an_early_exit_space_and_seeds_its_first_population():
    import numpy as np

    from codesign.config.workload import load_workload
    from codesign.search.operators import SeededSampling
    from codesign.search.problem import CodesignProblem
    from codesign.space import SearchSpace
    from codesign.spec import StageSpec

    workload = load_workload("digits")
    space = SearchSpace(
        stages=workload.space.stages, num_classes=10, in_channels=1, resolution=8, exit_fractions=(0.5, 0.9)
    )
    static = SearchSpace(**{**space.__dict__, "early_exits": False})
    rng = np.random.default_rng(0)
    seeds = [static.decode([int(rng.integers(len(g.choices))) for g in static.genes]) for _ in range(3)]
    for seed in seeds:
        decoded = space.decode(space.encode(seed))
        assert not any(decoded.exits) and decoded.stages == seed.stages and decoded.key() == seed.key()
    foreign = seeds[0].__class__(
        **{
            **seeds[0].__dict__,
            "stages": (StageSpec(depth=9, width=3, kernel=3, stride=1, weight_bits=8, act_bits=8),) * 3,
        }
    )
    assert space.encode(foreign) is None  # a backbone this space cannot express is no seed

    problem = CodesignProblem(space, lambda specs: [], ("accuracy", "energy"))
    rows = problem.seed_rows([*seeds, seeds[0], foreign])
    assert len(rows) == 3
    first = SeededSampling(rows, problem.exit_columns(), problem.exit_gene_columns())._do(
        problem, 12, random_state=np.random.default_rng(1)
    )
    decoded = [problem.decode(x) for x in first]
    assert [d.key() for d in decoded[:3]] == [s.key() for s in seeds]
    twins = decoded[3:6]  # each seed's backbone with every early exit on
    assert all(all(t.exits) for t in twins)
    assert [(t.stages, t.resolution, t.hardware) for t in twins] == [
        (s.stages, s.resolution, s.hardware) for s in seeds
    ]
    assert len(decoded) >= 12 and len(decoded[6:]) >= 6  # at least half a population drawn at random
    assert sum(not any(d.exits) for d in decoded[6:]) >= 1  # a share of the random rest is static
    assert len(problem.exit_gene_columns()) > 0
    assert not set(problem.exit_gene_columns()) & set(problem.exit_columns())
