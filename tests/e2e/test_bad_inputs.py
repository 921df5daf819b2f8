"""Bad input, as a hostile but fair user gives it, through the real command line: every case ends with exit
code 2, one line on stderr that names the file or option, no traceback, and nothing half-written.

Run identity (another accelerator, another override, an edited workload, two processes at once) is tested
with real processes on a real run folder."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest
import yaml

from codesign.cli.main import main
from codesign.deploy.qcdq import export_qcdq
from tests.conftest import explore_argv

ROOT = Path(__file__).resolve().parents[2]


DIGITS = yaml.safe_load((ROOT / "workloads" / "digits.yaml").read_text())


TINY = {
    "name": "tiny",
    "dataset": "digits",
    "accelerator": "edge_tpu_like",
    "space": {
        "stages": [
            {"depth": 1, "width": [8, 16], "stride": 1, "weight_bits": 8, "act_bits": 8},
            {"depth": 1, "width": 16, "stride": 2, "weight_bits": 8, "act_bits": 8},
            {"depth": 1, "width": 16, "stride": 2, "weight_bits": 8, "act_bits": 8},
        ],
        "exit_fractions": [0.2, 0.5],
    },
    "training": {
        "supernet": {"epochs": 1, "random_subnets": 1},
        "finetune": {"head_steps": 2, "final_epochs": 0.05},
    },
    "cost": {"lpf_limit": 2},
    "search": {"population": 4, "generations": 1, "seed": 0},
}


def one_line_failure(argv: list[str], capsys: pytest.CaptureFixture[str], *named: str) -> str:
    """Run the CLI in this process; it must fail with exit code 2 and one stderr line naming `named`."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse rejects an option value before a handler runs
        code = exc.code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, (code, captured.err[-1500:])
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    for name in named:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def with_change(data: dict, dotted: str, value: object) -> dict:
    data = yaml.safe_load(yaml.safe_dump(data))
    node = data
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    node[last] = value
    return data


def nothing_written(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


WORKLOAD_CASES = {
    "unknown top-level key": ("colour", "blue", "colour"),
    "learning rate as a word": ("training.learning_rate", "fast", "training.learning_rate"),
    "negative learning rate": ("training.learning_rate", -0.1, "training.learning_rate"),
    "fractional epochs": ("training.epochs", 2.5, "training.epochs"),
    "exit-loss weights of the wrong length": (
        "training.exit_loss_weights",
        [1, 1],
        "training.exit_loss_weights",
    ),
    "lpf_limit 0": ("cost.lpf_limit", 0, "cost.lpf_limit"),
    "unknown ZigZag criterion": ("cost.opt", "speed", "cost.opt"),
    "unknown dataset": ("dataset", "imagenet", "dataset"),
    "unknown block": ("space.stages.0.block", "transformer", "space.stages[0].block"),
    "exit fraction above 1": ("space.exit_fractions", [0.5, 1.5], "space.exit_fractions"),
    "exit fraction 0": ("space.exit_fractions", [0.0, 0.5], "space.exit_fractions"),
    "thresholds as genes (replaced)": ("space.thresholds", [0.5, 0.9], "space.thresholds"),
    "stride 3": ("space.stages.1.stride", 3, "space.stages[1].stride"),
    "unknown policy": ("space.policies", ["coin_flip"], "space.policies"),
    "unknown algorithm": ("search.algorithm", "annealing", "search.algorithm"),
    "population 0": ("search.population", 0, "search.population"),
    "negative supernet epochs": ("training.supernet.epochs", -1, "training.supernet.epochs"),
    "exit gradient above 1": ("training.supernet.exit_gradient", 2, "training.supernet.exit_gradient"),
    "unknown exit training": ("training.supernet.exit_training", "thawed", "training.supernet.exit_training"),
    "head epochs as a word": ("training.supernet.head_epochs", "four", "training.supernet.head_epochs"),
    "min accuracy of 95 (percent, not a fraction)": ("search.constraints.min_accuracy", 95, "min_accuracy"),
    "hardware search not a list": ("hardware.search", {"codesign.clock_mhz": 400}, "hardware.search"),
    "a width so large no machine holds the network": (
        "space.stages.1.width",
        10_000_000,
        "space.stages[1].width",
    ),
    "a width PyTorch cannot size": ("space.stages.1.width", 10**9, "space.stages[1].width"),
    "a pooling grid the map cannot take": ("space.exit_branches", {"pool": 3}, "space.exit_branches.pool"),
    "negative crop padding": ("training.augment", {"crop_padding": -1}, "training.augment.crop_padding"),
    "crop padding as wide as the image": (
        "training.augment",
        {"crop_padding": 8},
        "training.augment.crop_padding",
    ),
    "unknown augmentation": ("training.augment", {"rotate": 10}, "training.augment.rotate"),
    "area as an objective on a file without areas": (
        "search.objectives",
        ["accuracy", "energy", "area"],
        "search.objectives",
    ),
    "an area limit on a file without areas": (
        "search.constraints.max_area",
        2.0,
        "search.constraints.max_area",
    ),
    "an accelerator to compare that does not exist": (
        "hardware.compare",
        ["no_such_npu"],
        "hardware.compare",
    ),
    "accelerators to compare not a list": ("hardware.compare", "eyeriss_like", "hardware.compare"),
    "a negative area limit": ("search.constraints.max_area", -1, "search.constraints.max_area"),
    "a zero among searched accelerator choices": (
        "hardware.search",
        {"codesign.clock_mhz": [0, 400]},
        "hardware.search.codesign.clock_mhz",
    ),
}


@pytest.mark.parametrize("case", list(WORKLOAD_CASES))
def test_bad_workload_field_is_one_line_naming_file_and_field(case: str, tmp: Path, capsys):
    field, value, named = WORKLOAD_CASES[case]
    data = with_change(DIGITS, field, value)
    if "without areas" in case:  # every library file states its areas: a copy that states none
        accelerator, mapping = library_copy(tmp)
        for memory in accelerator["memories"].values():
            memory["area"] = 0
        write_yaml(tmp / "no_area.yaml", accelerator)
        write_yaml(tmp / "no_area.mapping.yaml", mapping)
        data = {**data, "accelerator": str(tmp / "no_area.yaml")}
    workload = write_yaml(tmp / "w.yaml", data)
    runs = tmp / "runs"
    one_line_failure(
        ["explore", "-w", str(workload), "--runs", str(runs), "-q"], capsys, str(workload), named
    )
    assert nothing_written(runs)


def test_malformed_yaml_names_the_line(tmp: Path, capsys):
    workload = tmp / "w.yaml"
    workload.write_text("space:\n  stages: [\n")
    one_line_failure(
        ["explore", "-w", str(workload), "--runs", str(tmp / "runs")], capsys, str(workload), "line"
    )
    assert nothing_written(tmp / "runs")


def library_copy(tmp: Path, name: str = "edge_tpu_like") -> tuple[dict, list]:
    accelerator = yaml.safe_load((ROOT / "accelerators" / f"{name}.yaml").read_text())
    mapping = yaml.safe_load((ROOT / "accelerators" / f"{name}.mapping.yaml").read_text())
    return accelerator, mapping


def test_missing_accelerator_file_is_reported_as_the_accelerator(tmp: Path, capsys):
    line = one_line_failure(
        ["explore", "-a", str(tmp / "mine.yaml"), "--runs", str(tmp / "runs")],
        capsys,
        "mine.yaml",
        "accelerator",
    )
    assert "mapping" not in line


def test_yml_accelerator_finds_its_mapping_without_cutting_the_name(tmp: Path, capsys):
    accelerator, _ = library_copy(tmp)
    write_yaml(tmp / "x.yml", accelerator)
    one_line_failure(["cost", "nothing.onnx", "-a", str(tmp / "x.yml")], capsys, "x.mapping.yaml")


def test_mapping_with_an_unknown_loop_dimension_is_refused(tmp: Path, capsys):
    accelerator, mapping = library_copy(tmp)
    mapping[0]["spatial_mapping"]["D1"] = ["Q, 8"]
    write_yaml(tmp / "mine.yaml", accelerator)
    write_yaml(tmp / "mine.mapping.yaml", mapping)
    one_line_failure(
        ["explore", "-a", str(tmp / "mine.yaml"), "--runs", str(tmp / "runs")],
        capsys,
        "mine.mapping.yaml",
        "spatial_mapping.D1",
    )
    assert nothing_written(tmp / "runs")


@pytest.mark.parametrize(
    "spatial,named",
    [
        (
            {"D1": ["K, 4", "G, 4"]},
            "[0] (default).spatial_mapping.D1",
        ),  # 4 x 4 = 16 on 8: ZigZag cuts no product
        ({"D7": ["K, 2"]}, "spatial_mapping.D7"),  # no such array dimension (ZigZag's schema says so)
    ],
)
def test_a_spatial_mapping_wider_than_the_array_is_refused(spatial: dict, named: str, tmp: Path, capsys):
    accelerator, mapping = library_copy(tmp)
    mapping[0]["spatial_mapping"] = {**mapping[0]["spatial_mapping"], **spatial}
    write_yaml(tmp / "mine.yaml", accelerator)
    write_yaml(tmp / "mine.mapping.yaml", mapping)
    one_line_failure(
        ["explore", "-a", str(tmp / "mine.yaml"), "--runs", str(tmp / "runs")],
        capsys,
        "mine.mapping.yaml",
        named,
    )
    assert nothing_written(tmp / "runs")


def test_a_single_loop_wider_than_the_array_is_costed_as_zigzag_cuts_it_with_one_warning(tmp: Path, capsys):
    from codesign.hardware import target

    accelerator, mapping = library_copy(tmp)
    mapping[0]["spatial_mapping"] = {**mapping[0]["spatial_mapping"], "D1": ["K, 64"]}  # 64 on an 8-wide D1
    write_yaml(tmp / "mine.yaml", accelerator)
    write_yaml(tmp / "mine.mapping.yaml", mapping)
    target._WARNED.clear()
    for _ in range(2):  # loaded again (variants, workers): warned once
        hardware = target.load_hardware(str(tmp / "mine.yaml"))
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "mine.mapping.yaml: [0] (default).spatial_mapping.D1: unrolls K 64" in err[0], (
        err
    )
    assert "cut to K 8" in err[0] and hardware.mapping_path.name == "mine.mapping.yaml"


CODESIGN_SECTION_CASES = {
    "clock as a word": ({"clock_mhz": "fast"}, "codesign.clock_mhz"),
    "interconnect energy as a word": (
        {"cores": 2, "interconnect": {"bandwidth_bits_per_cycle": 64, "energy_pj_per_bit": "x"}},
        "codesign.interconnect.energy_pj_per_bit",
    ),
    "reference bits not numbers": ({"mac_energy": {"reference_bits": ["a", 8]}}, "codesign.mac_energy"),
    "precision factor below 1": ({"precision_scalable": {4: 0.5}}, "codesign.precision_scalable"),
    "unknown metadata key": ({"turbo": True}, "codesign.turbo"),
    "cores without an interconnect": ({"cores": 2}, "codesign.interconnect"),
}


@pytest.mark.parametrize("case", list(CODESIGN_SECTION_CASES))
def test_bad_codesign_section_of_an_accelerator_is_one_line(case: str, tmp: Path, capsys):
    section, named = CODESIGN_SECTION_CASES[case]
    accelerator, mapping = library_copy(tmp)
    accelerator["codesign"] = {**accelerator.get("codesign", {}), **section}
    write_yaml(tmp / "mine.yaml", accelerator)
    write_yaml(tmp / "mine.mapping.yaml", mapping)
    one_line_failure(
        ["explore", "-a", str(tmp / "mine.yaml"), "--runs", str(tmp / "runs")], capsys, "mine.yaml", named
    )
    assert nothing_written(tmp / "runs")


OVERRIDE_CASES = {
    "array resized to a number": ("operational_array.sizes=16", "operational_array.sizes"),
    "array dimension of 0": ("operational_array.sizes=[0,8,4,4]", "operational_array.sizes.0"),
    "memory of size 0": ("memories.rf_1B.size=0", "memories.rf_1B.size"),
    "zero bandwidth": ("memories.rf_1B.ports.0.bandwidth_max=0", "rf_1B"),
    "a field that does not exist": ("memories.nope.size=8", "memories.nope.size"),
    "no value": ("operational_array.sizes", "--hw"),
    "a clock that is not a number": ("codesign.clock_mhz=.nan", "codesign.clock_mhz"),
    "a register too small to model": ("memories.rf_1B.size=1", "memories.rf_1B"),  # CACTI: 1 bit
}


@pytest.mark.parametrize("case", list(OVERRIDE_CASES))
def test_bad_hardware_override_is_one_line_before_any_training(case: str, tmp: Path, capsys):
    override, named = OVERRIDE_CASES[case]
    runs = tmp / "runs"
    argv = ["explore", "--hw", override, "--runs", str(runs), "--cost-cache", str(tmp / "c.sqlite"),
            "--supernet-cache", str(tmp / "supernets"), "-q"]  # fmt: skip
    one_line_failure(argv, capsys, named)
    assert nothing_written(runs)
    assert not (tmp / "supernets").exists()  # failed before the supernet trained


OPTION_CASES = {
    "negative workers": (["explore", "--workers", "-1"], "--workers"),
    "zero ZigZag jobs": (["explore", "-j", "0"], "--jobs"),
    "threads as a word": (["explore", "--threads", "x"], "--threads"),
    "zero generations": (["explore", "--generations", "0"], "generations"),
    "min accuracy nan": (["explore", "--min-accuracy", "nan"], "--min-accuracy"),
    "unknown objective": (["explore", "--objectives", "accuracy,joy"], "search.objectives"),
    "cores as letters": (["cost", "MODEL", "--cores", "a,b"], "--cores"),
    "cores that do not exist": (["cost", "MODEL", "--cores", "0,0,0,5,5,5"], "--cores"),
    "cores of the wrong count": (["cost", "MODEL", "--cores", "0,0"], "--cores"),
    "NaN exit fractions": (["cost", "MODEL", "--exit-fractions", "nan,0.5,0.5"], "--exit-fractions"),
    "lpf limit 0": (["cost", "MODEL", "--lpf-limit", "0"], "--lpf-limit"),
    "input shape as words": (["cost", "MODEL", "--input-shape", "a,b"], "--input-shape"),
    "a Dask address that is no address": (["explore", "--dask", "nonsense"], "--dask"),
    "a local Dask cluster of no workers": (["explore", "--dask", "local:0"], "--dask"),
    "infer threshold above 1": (["infer", "SEGMENTS", "--thresholds", "1.5,0.5"], "--thresholds"),
    "infer batch size 0": (["infer", "SEGMENTS", "--batch-size", "0"], "--batch-size"),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, trained_tiny) -> dict[str, Path]:
    from codesign.deploy.segments import export_segments
    from codesign.network.model import build_model, load_shared_weights

    spec, trained = trained_tiny
    model = load_shared_weights(build_model(spec), trained.state_dict)
    folder = tmp_path_factory.mktemp("exported")
    return {
        "MODEL": export_qcdq(model, folder / "net.onnx"),
        "SEGMENTS": export_segments(model, folder / "segments").folder,
    }


@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_bad_option_is_one_line_naming_the_option(case: str, exported, tmp: Path, capsys):
    argv, named = OPTION_CASES[case]
    argv = [str(exported.get(a, a)) for a in argv]
    if argv[0] == "explore":
        argv += ["--runs", str(tmp / "runs")]
    if argv[0] == "cost":
        argv += ["--out", str(tmp / "out"), "--cost-cache", str(tmp / "c.sqlite")]
    one_line_failure(argv, capsys, named)
    assert nothing_written(tmp / "runs") and not (tmp / "out").exists()


def test_a_file_that_is_not_onnx(tmp: Path, capsys):
    model = tmp / "model.onnx"
    model.write_text("not a model")
    one_line_failure(["cost", str(model), "--out", str(tmp / "o")], capsys, str(model), "ONNX")
    assert not (tmp / "o").exists()


def test_symbolic_spatial_dimensions_need_a_given_shape(exported, tmp: Path, capsys):
    proto = onnx.load(str(exported["MODEL"]))
    proto.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    proto.graph.input[0].type.tensor_type.shape.dim[3].dim_param = "width"
    symbolic = tmp / "symbolic.onnx"
    onnx.save(proto, str(symbolic))
    line = one_line_failure(
        ["cost", str(symbolic), "--out", str(tmp / "o"), "--cost-cache", str(tmp / "c.sqlite")],
        capsys,
        str(symbolic),
        "--input-shape",
    )
    assert "height" in line and not (tmp / "o").exists()
    given = [
        "cost",
        str(symbolic),
        "--input-shape",
        "1,8,8",
        "--out",
        str(tmp / "o"),
        "--cost-cache",
        str(tmp / "c.sqlite"),
    ]
    assert main(given) == 0
    static = ["cost", str(exported["MODEL"]), "--out", str(tmp / "s"), "--cost-cache", str(tmp / "c.sqlite")]
    assert main(static) == 0
    capsys.readouterr()
    assert (tmp / "o" / "layers.csv").read_text() == (tmp / "s" / "layers.csv").read_text()


@pytest.mark.parametrize("content", ["garbage", "wrong schema"])
def test_a_broken_layer_cost_cache_says_what_to_do(content: str, exported, tmp: Path, capsys):
    cache = tmp / "c.sqlite"
    if content == "garbage":
        cache.write_bytes(b"SQLite format 2\x00 but truncated" * 10)
    else:
        with sqlite3.connect(cache) as connection:
            connection.execute("CREATE TABLE layer_costs (key TEXT, energy REAL)")
    before = cache.read_bytes()
    line = one_line_failure(
        ["cost", str(exported["MODEL"]), "--out", str(tmp / "o"), "--cost-cache", str(cache)],
        capsys,
        str(cache),
    )
    # not recognisably codesign's: left as it was, and not called safe to delete
    assert "untouched" in line and "delete" not in line and not (tmp / "o").exists()
    assert cache.read_bytes() == before


def test_report_on_an_empty_or_broken_run_store_changes_nothing(tmp: Path, capsys):
    run = tmp / "run"
    run.mkdir()
    (run / "run.db").write_bytes(b"")
    one_line_failure(["report", str(run)], capsys, "run.db")
    assert (run / "run.db").stat().st_size == 0 and sorted(p.name for p in run.iterdir()) == ["run.db"]
    (run / "run.db").write_bytes(b"garbage" * 100)
    one_line_failure(["report", str(run)], capsys, "run.db")
    one_line_failure(["report", str(tmp / "nowhere")], capsys, "nowhere")
    with sqlite3.connect(tmp / "other.db") as connection:  # a database, but not a run store
        connection.execute("CREATE TABLE t (x)")
    (tmp / "other").mkdir()
    os.replace(tmp / "other.db", tmp / "other" / "run.db")
    one_line_failure(["report", str(tmp / "other")], capsys, "run.db")
    one_line_failure(["explore", "--resume", str(tmp / "other")], capsys, "run.db")


def test_unwritable_output_folders_are_one_line(exported, tmp: Path, capsys):
    blocker = tmp / "a-file"
    blocker.write_text("")
    one_line_failure(
        [
            "cost",
            str(exported["MODEL"]),
            "--out",
            str(blocker / "out"),
            "--cost-cache",
            str(tmp / "c.sqlite"),
        ],
        capsys,
        str(blocker),
    )
    one_line_failure(["explore", "--runs", str(blocker / "runs"), "-q"], capsys, str(blocker))
    one_line_failure(["explore", "--run-dir", str(blocker), "-q"], capsys, str(blocker))
    one_line_failure(
        ["explore", "--cost-cache", str(blocker / "c.sqlite"), "--runs", str(tmp / "r")], capsys, str(blocker)
    )
    assert nothing_written(tmp / "r")


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codesign.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("identity")
    workload = write_yaml(folder / "tiny.yaml", TINY)
    cache = folder / "cache" / "layer_costs.sqlite"
    run = folder / "run"
    done = cli(*explore_argv(workload, run, cache, "-q", "-j", "1"))
    assert done.returncode == 0, done.stderr[-2000:]
    return {"workload": workload, "cache": cache, "run": run}


def refused(done: subprocess.CompletedProcess[str], *named: str) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    for name in named:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def run_state(run: Path) -> tuple[int, bytes]:
    with sqlite3.connect(run / "run.db") as connection:
        count = connection.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    return count, (run / "pareto.csv").read_bytes()


@pytest.mark.parametrize(
    "change,named",
    [
        (["-a", "eyeriss_like"], "accelerator"),
        (["--hw", "codesign.clock_mhz=100"], "clock_mhz 500.0 -> 100.0"),
        (["--seed", "7"], "search.seed"),
    ],
)
def test_reopening_a_run_with_other_settings_is_refused(finished_run, change: list[str], named: str):
    run, before = finished_run["run"], run_state(finished_run["run"])
    common = [
        "-w",
        str(finished_run["workload"]),
        "--cost-cache",
        str(finished_run["cache"]),
        "-q",
        "-j",
        "1",
    ]
    line = refused(cli("explore", "--run-dir", str(run), *common, *change), str(run), named)
    assert "--resume" in line and "another folder" in line
    assert run_state(run) == before


def test_resuming_after_the_workload_file_was_edited_continues_the_stored_run_and_says_so(
    finished_run, tmp: Path
):
    edited = tmp / "edited"
    subprocess.run(["cp", "-r", str(finished_run["run"]), str(edited)], check=True)
    before = run_state(edited)
    original = finished_run["workload"].read_text()
    try:
        write_yaml(finished_run["workload"], with_change(TINY, "space.stages.2.width", [16, 32]))
        done = cli(
            "explore", "--resume", str(edited), "--cost-cache", str(finished_run["cache"]), "-q", "-j", "1"
        )
    finally:
        finished_run["workload"].write_text(original)
    assert done.returncode == 0, done.stderr[-2000:]
    notice = next(line for line in done.stdout.splitlines() if "edited since this run started" in line)
    assert str(finished_run["workload"]) in notice and "space.stages" in notice and "run.db" in notice
    assert "0 new" in done.stdout and run_state(edited) == before
    unchanged = cli(
        "explore", "--resume", str(edited), "--cost-cache", str(finished_run["cache"]), "-q", "-j", "1"
    )
    assert unchanged.returncode == 0 and "edited since" not in unchanged.stdout, unchanged.stderr[-2000:]


def test_a_run_started_before_fields_were_added_still_resumes(finished_run, tmp: Path):
    """A store written by an earlier version lacks the fields added since (head bit widths, the drop
    reference) and recorded the accelerator's fingerprint in its earlier form; it resumes as long as the new
    fields hold the values that reproduce what it computed."""
    from dataclasses import replace

    from codesign.hardware.target import load_hardware
    from codesign.runs.identity import ADDED_LATER
    from codesign.runs.store import RunStore

    run = tmp / "older"
    subprocess.run(["cp", "-r", str(finished_run["run"]), str(run)], check=True)
    with RunStore.of_run(run) as store:
        config = store.config()
        space = dict(config.space)
        for path in ADDED_LATER:
            section, *rest = path.split(".")[1:]
            if rest:
                space[section] = {k: v for k, v in space[section].items() if k != rest[0]}
            else:
                space.pop(section, None)
        # and the accelerator's fingerprint as the versions from DVFS's introduction until a515535 recorded it
        earlier = load_hardware(config.accelerator_file, config.mapping_file).earlier_fingerprints
        store.set_config(replace(config, space=space, hardware=earlier[0]))
    done = cli("explore", "--resume", str(run), "--cost-cache", str(finished_run["cache"]), "-q", "-j", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "0 new" in done.stdout


def test_a_larger_budget_continues_the_run_and_says_so(finished_run, tmp: Path):
    run = tmp / "more"
    subprocess.run(["cp", "-r", str(finished_run["run"]), str(run)], check=True)
    done = cli(
        "explore",
        "--resume",
        str(run),
        "--generations",
        "2",
        "--cost-cache",
        str(finished_run["cache"]),
        "-q",
        "-j",
        "1",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "another search budget or constraints: search.generations 1 -> 2" in done.stdout
    assert "resuming with" in done.stdout


def test_two_processes_on_one_run_folder_and_no_stuck_lock_after_a_kill(tmp: Path):
    run = tmp / "shared"
    slow = write_yaml(
        tmp / "slow.yaml", with_change(TINY, "training.supernet.epochs", 400)
    )  # a long first step
    args = explore_argv(slow, run, tmp / "c.sqlite", "-q", "-j", "1")
    first = subprocess.Popen(
        [sys.executable, "-m", "codesign.cli.main", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while not (run / "run.db").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None, "the first run must still be working"
        line = refused(cli(*args), str(run), "run.lock", str(first.pid))
        assert "another --run-dir" in line
    finally:
        first.kill()  # SIGKILL: no clean-up runs in the first process
        first.wait()
    # The operating system released the lock with the process: the next one gets the folder (and, as the
    # killed run recorded its settings, is told what it changes).
    line = refused(cli(*args, "--seed", "5"), str(run), "search.seed")
    assert "run.lock" not in line


def test_a_run_that_fails_before_its_first_evaluation_leaves_no_folder(tmp: Path):
    """Interrupted during supernet training: nothing was finished, so nothing stays."""
    workload = write_yaml(tmp / "w.yaml", with_change(TINY, "training.supernet.epochs", 200))
    run = tmp / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "codesign.cli.main",
            *explore_argv(workload, run, tmp / "c.sqlite", "-j", "1"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell without job control starts background commands with Ctrl-C ignored, and children inherit
        # that: give the run a terminal's default, as a user has it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while not (run / "run.db").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)  # Ctrl-C
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert not run.exists()
