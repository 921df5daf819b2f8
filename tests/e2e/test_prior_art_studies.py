"""The prior-art studies end to end at their `--quick` budgets: `benchmarks/prior_art_tables.py` runs the three
workloads and a hardware-objective search through the real command line (real training on a Fashion-MNIST subset,
real ZigZag runs), then writes its tables; the tables' figures are checked against the runs they come from."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from codesign.data.local import _search_dirs
from codesign.runs.store import RunStore

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "prior_art_tables.py"

pytestmark = pytest.mark.skipif(
    not any(
        (d / "train-images-idx3-ubyte").exists() or (d / "train-images-idx3-ubyte.gz").exists()
        for d in _search_dirs(None, "fashion-mnist")
    ),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist; .ci/run installs it)",
)


def tables_module():
    spec = importlib.util.spec_from_file_location("prior_art_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> tuple[Path, Path]:
    runs, out = tmp_path_factory.mktemp("studies"), tmp_path_factory.mktemp("tables")
    command = [
        sys.executable, str(SCRIPT), "--quick", "--runs", str(runs), "--out", str(out),
        "--accelerators", "edge_tpu_like", "edge_tpu_x4", "--hardware-search", "edge_tpu_like",
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT)
    return runs, out


def test_the_quick_studies_run_and_every_table_is_written(studies) -> None:
    runs, out = studies
    names = {"aebnas_fmnist", "edanas_fmnist", "zniber_fmnist", "aebnas_fmnist-energy-edge_tpu_like",
             "edanas_fmnist-energy-edge_tpu_like"}  # fmt: skip
    assert {p.name for p in runs.iterdir() if p.is_dir()} == names
    times = pd.read_csv(out / "study_times.csv")
    assert set(times["run"]) == names and (times["wall_time_s"] > 0).all()
    assert json.loads((runs / "study_times.json").read_text()).keys() == names
    for name in names:
        with RunStore.of_run(runs / name) as store:
            config = store.contents().config
            assert config.data is not None and config.data.train_images == 3000  # the quick budget ran
            assert store.finals()


def test_zniber_table_compares_early_exit_with_static_on_four_cores(studies) -> None:
    runs, out = studies
    table = pd.read_csv(out / "zniber_edp.csv")
    assert list(table["level"]) == ["static best", "best - 0.5 pt", "best - 1 pt"]
    reached = table.dropna(subset=["edp_ratio"])
    assert len(reached) >= 1
    # a static network is an early-exit network with its exits off: early exit can never lose
    assert (reached["edp_ratio"] <= 1 + 1e-9).all()
    assert (reached["static_edp_j_s"] > 0).all() and reached["static_cores"].str.startswith("stages").all()
    with RunStore.of_run(runs / "zniber_fmnist" / "baseline") as store:
        static = {r.result.spec.key(): r.result for r in store.finals().values()}
    first = reached.iloc[0]
    result = static[first["static_key"]]
    assert first["static_edp_j_s"] == pytest.approx(result.edp(result.expected_test), rel=1e-12)


def test_macs_fronts_are_priced_against_the_hardware_search(studies) -> None:
    runs, out = studies
    table = pd.read_csv(out / "macs_vs_hardware.csv")
    assert len(table) == 2 * 2 * 3  # methods x accelerators x levels
    searched = table[table["accelerator"] == "edge_tpu_like"]
    other = table[table["accelerator"] == "edge_tpu_x4"]
    assert other["hardware_energy_pj"].isna().all() and other["same_candidates_energy_ratio"].notna().any()
    found = searched.dropna(subset=["hardware_energy_pj", "macs_front_best_energy_pj"])
    assert len(found) >= 1
    ratio = found["macs_front_best_energy_pj"] / found["hardware_energy_pj"]
    assert ratio.to_numpy() == pytest.approx(
        found["macs_front_best_over_hardware_energy"].to_numpy(), rel=1e-12
    )
    # the front's best network on this accelerator is never dearer than the one its MACs pick
    picks = found.dropna(subset=["macs_pick_energy_pj"])
    assert (picks["macs_front_best_energy_pj"] <= picks["macs_pick_energy_pj"] * (1 + 1e-12)).all()
    # among the same candidates, the lowest-energy pick is never dearer than the lowest-MACs one
    assert (table["same_candidates_energy_ratio"].dropna() >= 1 - 1e-12).all()

    tau = pd.read_csv(out / "kendall_tau.csv")
    assert len(tau) == 4 and tau["kendall_tau"].between(-1, 1).all()
    with RunStore.of_run(runs / "aebnas_fmnist") as store:
        evaluated = len(store.results())
    assert set(tau.loc[tau["method"] == "aebnas", "candidates"]) == {evaluated}


def test_a_network_exported_from_its_spec_costs_what_its_returned_onnx_costs(studies) -> None:
    """The tables cost every evaluated candidate from a fresh export of its spec (no weights): layer shapes and
    bit widths decide the cost, so it equals the cost of the trained network's own ONNX file."""
    runs, _ = studies
    module = tables_module()
    pricer = module.Pricer(runs / "aebnas_fmnist")
    returned = dict((r.spec.key(), e) for r, e in pricer.returned("edge_tpu_like"))
    record = pricer.finals[0]
    result = record.result
    fresh = module.qcdq_graph(module.build_model(result.spec).eval())
    test = result.test.fractions
    again = pricer.price(fresh, "edge_tpu_like", result, test, result.val.fractions)
    assert again["energy_pj"] == pytest.approx(returned[result.spec.key()]["energy_pj"], rel=1e-9)
    assert again["latency_s"] == pytest.approx(returned[result.spec.key()]["latency_s"], rel=1e-9)
