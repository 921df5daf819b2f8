"""A fuzz suite of bad input, generated systematically from good input: every field of a workload, an
accelerator and its mapping given a value of the wrong kind or an unknown sibling, malformed ONNX files,
dataset files too small or broken, run stores and cost caches damaged in every way we know, and bad option
values. Each case goes through the real command line and must end with exit code 2, one line on stderr
naming the file (or option), no traceback, and the output folder exactly as it was.

The number of cases is printed by `pytest tests/test_fuzz.py --collect-only -q`."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import yaml
from onnx import helper

from tests.conftest import explore_argv
from tests.e2e.test_bad_inputs import one_line_failure, write_yaml

ROOT = Path(__file__).resolve().parents[2]


TINY: dict[str, Any] = {
    "name": "tiny",
    "dataset": "digits",
    "accelerator": "edge_tpu_like",
    "space": {
        "stages": [
            {"depth": 1, "width": [8, 16], "kernel": 3, "stride": 1, "weight_bits": 8, "act_bits": 8},
            {"depth": 1, "width": 16, "kernel": [3, 5], "stride": 2, "weight_bits": [4, 8], "act_bits": 8},
            {"depth": 1, "width": 16, "stride": 2, "weight_bits": 8, "act_bits": 8, "block": "mbconv"},
        ],
        "exit_fractions": [0.2, 0.5],
        "exit_branches": {"convs": [0, 1], "channels": [8], "pool": [1, 2]},
        "policies": ["score_margin"],
    },
    "hardware": {"overrides": {"codesign.clock_mhz": 400}, "search": {"memories.sram_2MB.size": [8388608]}},
    "training": {
        "epochs": 2,
        "learning_rate": 0.01,
        "supernet": {"epochs": 1, "random_subnets": 1},
        "finetune": {"head_steps": 2, "final_epochs": 0.05},
    },
    "cost": {"lpf_limit": 2, "opt": "EDP"},
    "search": {"population": 4, "generations": 1, "seed": 0, "constraints": {"min_accuracy": 0.1}},
}


def leaves(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """(path, value) of every node below the root: mappings and lists, and the scalars in them."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        yield (*path, key), value
        yield from leaves(value, (*path, key))


def wrong_kind(value: Any) -> Any:
    """A value of another kind than `value`: what a typo or a misplaced line gives."""
    if isinstance(value, bool):
        return "maybe"
    if isinstance(value, int | float):
        return "many"
    if isinstance(value, str):
        return {"x": value}
    if isinstance(value, list):
        return {"x": 1}
    if isinstance(value, dict):
        return [1, 2]
    return "?"


def changed(data: Any, path: tuple, value: Any) -> Any:
    data = yaml.safe_load(yaml.safe_dump(data))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def with_unknown_key(data: Any, path: tuple) -> Any:
    data = yaml.safe_load(yaml.safe_dump(data))
    node = data
    for key in path:
        node = node[key]
    node["colour"] = "blue"
    return data


def dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def mutations(document: Any, skip: tuple[tuple, ...] = ()) -> dict[str, Any]:
    """Every field with a wrong-kind value, and an unknown key in every mapping."""
    cases: dict[str, Any] = {}
    if isinstance(document, dict):
        cases["unknown key at the top"] = with_unknown_key(document, ())
    for path, value in leaves(document):
        if any(path[: len(s)] == s for s in skip):
            continue
        cases[f"{dotted(path)} = {wrong_kind(value)!r}"] = changed(document, path, wrong_kind(value))
        if isinstance(value, dict):
            cases[f"unknown key in {dotted(path)}"] = with_unknown_key(document, path)
    return cases


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below `folder` with its content's hash (an unchanged folder has the same snapshot)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        # not SQLite's shared-memory index and write-ahead log, which any reader may rebuild or fold in
        if p.is_file() and not p.name.endswith(("-shm", "-wal"))
    }


WORKLOAD_MUTATIONS = mutations(TINY)


@pytest.mark.parametrize("case", list(WORKLOAD_MUTATIONS))
def test_workload_mutation(case: str, tmp: Path, capsys):
    workload = write_yaml(tmp / "w.yaml", WORKLOAD_MUTATIONS[case])
    runs = tmp / "runs"
    one_line_failure(["explore", "-w", str(workload), "--runs", str(runs), "-q"], capsys, str(workload))
    assert snapshot(runs) == {}


ACCELERATOR = yaml.safe_load((ROOT / "accelerators" / "edge_tpu_like.yaml").read_text())


MAPPING = yaml.safe_load((ROOT / "accelerators" / "edge_tpu_like.mapping.yaml").read_text())


# Free text ZigZag and codesign keep as given (a name, a description) is no error in any form it may take.
FREE_TEXT = (("name",), ("codesign", "description"))


ACCELERATOR_MUTATIONS = mutations(ACCELERATOR, skip=FREE_TEXT)


MAPPING_MUTATIONS = mutations(MAPPING, skip=tuple((i, "name") for i in range(len(MAPPING))))


def hardware_case(tmp: Path, accelerator: Any, mapping: Any) -> list[str]:
    write_yaml(tmp / "mine.yaml", accelerator)
    write_yaml(tmp / "mine.mapping.yaml", mapping)
    return ["explore", "-a", str(tmp / "mine.yaml"), "--runs", str(tmp / "runs"), "-q"]


@pytest.mark.parametrize("case", list(ACCELERATOR_MUTATIONS))
def test_accelerator_mutation(case: str, tmp: Path, capsys):
    argv = hardware_case(tmp, ACCELERATOR_MUTATIONS[case], MAPPING)
    one_line_failure(argv, capsys, "mine.yaml")
    assert snapshot(tmp / "runs") == {}


@pytest.mark.parametrize("case", list(MAPPING_MUTATIONS))
def test_mapping_mutation(case: str, tmp: Path, capsys):
    argv = hardware_case(tmp, ACCELERATOR, MAPPING_MUTATIONS[case])
    one_line_failure(argv, capsys, "mine.mapping.yaml")
    assert snapshot(tmp / "runs") == {}


SYNTAX_CASES = {
    "an unclosed list": "space:\n  stages: [\n",
    "a tab for indentation": "space:\n\tstages: []\n",
    "two documents": "dataset: digits\n---\ndataset: digits\n",
    "a duplicated anchor alias": "a: *nothing\n",
    "binary": "\x00\x01\x02",
    "empty": "",
    "a list at the top": "- dataset: digits\n",
}


@pytest.mark.parametrize("case", list(SYNTAX_CASES))
@pytest.mark.parametrize("kind", ["workload", "accelerator", "mapping"])
def test_malformed_yaml(case: str, kind: str, tmp: Path, capsys):
    text = SYNTAX_CASES[case]
    if kind == "workload":
        (tmp / "w.yaml").write_text(text)
        argv, named = ["explore", "-w", str(tmp / "w.yaml"), "--runs", str(tmp / "runs")], "w.yaml"
    else:
        argv = hardware_case(tmp, ACCELERATOR, MAPPING)
        named = "mine.yaml" if kind == "accelerator" else "mine.mapping.yaml"
        (tmp / named).write_text(text)
    one_line_failure(argv, capsys, named)
    assert snapshot(tmp / "runs") == {}


def conv_model(**change: Any) -> onnx.ModelProto:
    """A valid one-convolution ONNX model, with parts of it changed."""
    weight = helper.make_tensor("w", onnx.TensorProto.FLOAT, [4, 1, 3, 3], np.ones(36, np.float32).tolist())
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, change.get("input_shape", [1, 1, 8, 8]))
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4, 8, 8])
    nodes = change.get("nodes", [node])
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=change.get("initializers", [weight]))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", change.get("opset", 13))])
    model.ir_version = change.get("ir_version", 8)
    return model


def onnx_cases() -> dict[str, bytes]:
    good = conv_model().SerializeToString()
    return {
        "empty file": b"",
        "text": b"not a model at all",
        "random bytes": np.random.default_rng(0).integers(0, 256, 512, dtype=np.uint8).tobytes(),
        "truncated in the middle": good[: len(good) // 2],
        "a node reading a tensor nobody writes": conv_model(
            nodes=[helper.make_node("Conv", ["nowhere", "w"], ["y"], name="conv")]
        ).SerializeToString(),
        "an operator ONNX does not know": conv_model(
            nodes=[helper.make_node("Convolve", ["x", "w"], ["y"], name="conv")]
        ).SerializeToString(),
        "a weight of the wrong rank": conv_model(
            initializers=[helper.make_tensor("w", onnx.TensorProto.FLOAT, [4, 9], np.ones(36).tolist())]
        ).SerializeToString(),
        "a one-dimensional input": conv_model(input_shape=[64]).SerializeToString(),
        "an input of size zero": conv_model(input_shape=[1, 1, 0, 8]).SerializeToString(),
        "no nodes": conv_model(nodes=[], initializers=[]).SerializeToString(),
        "a cycle": conv_model(
            nodes=[
                helper.make_node("Relu", ["z"], ["y"], name="a"),
                helper.make_node("Relu", ["y"], ["z"], name="b"),
            ]
        ).SerializeToString(),
    }


ONNX_CASES = onnx_cases()


@pytest.mark.parametrize("case", list(ONNX_CASES))
def test_malformed_onnx(case: str, tmp: Path, capsys):
    model = tmp / "model.onnx"
    model.write_bytes(ONNX_CASES[case])
    out = tmp / "out"
    argv = ["cost", str(model), "--out", str(out), "--cost-cache", str(tmp / "c.sqlite")]
    one_line_failure(argv, capsys, str(model))
    assert snapshot(out) == {}


def idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def fashion_files(train: int = 40, test: int = 10) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    return {
        "train-images-idx3-ubyte": idx(rng.integers(0, 256, (train, 28, 28))),
        "train-labels-idx1-ubyte": idx(np.arange(train) % 10),
        "t10k-images-idx3-ubyte": idx(rng.integers(0, 256, (test, 28, 28))),
        "t10k-labels-idx1-ubyte": idx(np.arange(test) % 10),
    }


def dataset_cases() -> dict[str, tuple[dict[str, bytes], str]]:
    """(the four files, the one the message must name)."""
    good = fashion_files()
    train_images, test_labels = "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
    return {
        "one training image": (fashion_files(train=1), train_images),
        "no test images": (fashion_files(test=0), "t10k-images-idx3-ubyte"),
        "an empty image file": ({**good, train_images: b""}, train_images),
        "a header claiming more images than there are": (
            {**good, train_images: good[train_images][:4] + np.array([10**6, 28, 28], ">u4").tobytes()},
            train_images,
        ),
        "images of another size": (
            {**good, train_images: idx(np.zeros((40, 32, 32)))},
            train_images,
        ),
        "labels out of range": ({**good, test_labels: idx(np.full(10, 200))}, test_labels),
        "fewer labels than images": ({**good, test_labels: idx(np.zeros(3))}, test_labels),
        "a label file given as images": (
            {**good, train_images: good["train-labels-idx1-ubyte"]},
            train_images,
        ),
        "a broken gzip": ({**good, f"{train_images}.gz": b"\x1f\x8b" + b"garbage"}, f"{train_images}.gz"),
    }


DATASET_CASES = dataset_cases()


@pytest.mark.parametrize("case", list(DATASET_CASES))
def test_broken_dataset_files(case: str, tmp: Path, capsys):
    files, named = DATASET_CASES[case]
    folder = tmp / "fashion-mnist"
    folder.mkdir()
    for name, content in files.items():
        if name.endswith(".gz"):
            (folder / name.removesuffix(".gz")).unlink(missing_ok=True)
        (folder / name).write_bytes(content)
    workload = write_yaml(tmp / "w.yaml", {**TINY, "dataset": "fashion-mnist", "hardware": {}})
    runs = tmp / "runs"
    argv = ["explore", "-w", str(workload), "--data-dir", str(folder), "--runs", str(runs), "-q"]
    one_line_failure(argv, capsys, str(folder / named))
    assert snapshot(runs) == {}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A finished tiny run with its own cost cache (copied by each case before it is damaged)."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("fuzz-run")
    small = {k: v for k, v in TINY.items() if k not in ("hardware",)}
    workload = write_yaml(folder / "tiny.yaml", small)
    argv = explore_argv(workload, folder / "run", folder / "cache" / "c.sqlite", "-q", "-j", "1")
    done = subprocess.run([sys.executable, "-m", "codesign.cli.main", *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return {"run": folder / "run", "cache": folder / "cache" / "c.sqlite"}


def garbage_pages(path: Path) -> None:
    """Header and schema (page 1) intact, every data page garbage: the first query fails, not the open."""
    with sqlite3.connect(path) as connection:
        page = connection.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    data[page:] = rng.integers(0, 256, len(data) - page, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def sql(statement: str):  # noqa: ANN201
    def damage(path: Path) -> None:
        connection = sqlite3.connect(path)
        connection.executescript(statement)
        connection.execute(
            "PRAGMA wal_checkpoint(TRUNCATE)"
        )  # into the file itself, as a finished run leaves it
        connection.close()

    return damage


DAMAGE = {
    "emptied": lambda p: p.write_bytes(b""),
    "text": lambda p: p.write_text("not a database"),
    "cut in half": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "data pages garbage": garbage_pages,
}


STORE_DAMAGE = {
    **DAMAGE,
    "no evaluations table": sql("DROP TABLE evaluations"),
    "an evaluation without its validation entry": sql(
        "UPDATE evaluations SET result_json = json_remove(result_json, '$.val')"
    ),
    "an evaluation that is not JSON": sql("UPDATE evaluations SET result_json = '{not json'"),
    "a configuration without its search settings": sql(
        "UPDATE meta SET value = json_remove(value, '$.search') WHERE key = 'config'"
    ),
}


# (An emptied cache, or one without its table, is no damage: a cache is made again where it is missing.)
CACHE_DAMAGE = {name: damage for name, damage in DAMAGE.items() if name != "emptied"}


def copied(finished: dict[str, Path], tmp: Path) -> tuple[Path, Path]:
    run, cache = tmp / "run", tmp / "cache" / "c.sqlite"
    shutil.copytree(finished["run"], run)
    cache.parent.mkdir()
    shutil.copy(finished["cache"], cache)
    return run, cache


@pytest.mark.parametrize("damage", list(STORE_DAMAGE))
@pytest.mark.parametrize("command", ["report", "resume"])
def test_damaged_run_store(finished, damage: str, command: str, tmp: Path, capsys):
    run, cache = copied(finished, tmp)
    STORE_DAMAGE[damage](run / "run.db")
    before = snapshot(run)
    if command == "report":
        argv = ["report", str(run), "-q"]
    else:
        argv = ["explore", "--resume", str(run), "--cost-cache", str(cache), "-q", "-j", "1"]
    line = one_line_failure(argv, capsys, str(run), "run.db")
    assert str(cache) not in line
    assert snapshot(run) == before


@pytest.mark.parametrize("damage", list(CACHE_DAMAGE))
@pytest.mark.parametrize("command", ["cost", "resume"])
def test_damaged_cost_cache(finished, damage: str, command: str, tmp: Path, capsys):
    run, cache = copied(finished, tmp)
    CACHE_DAMAGE[damage](cache)
    before = snapshot(run)
    model = next((run / "onnx").glob("*.onnx"))
    if command == "cost":
        argv = ["cost", str(model), "--cost-cache", str(cache), "--out", str(tmp / "out")]
    else:
        argv = [
            "explore",
            "--resume",
            str(run),
            "--cost-cache",
            str(cache),
            "-q",
            "-j",
            "1",
            "--generations",
            "2",
        ]
    line = one_line_failure(argv, capsys, str(cache))
    # codesign's own cache (its application id), damaged: safe to delete; a text file is nobody's to delete
    assert "run.db" not in line and ("untouched" if damage == "text" else "delete it safely") in line
    assert snapshot(run) == before and snapshot(tmp / "out") == {}


OPTION_CASES = {
    "explore --population 0": (["explore", "--population", "0"], "population"),
    "explore --generations -3": (["explore", "--generations", "-3"], "generations"),
    "explore --threads 0": (["explore", "--threads", "0"], "--threads"),
    "explore --seed x": (["explore", "--seed", "x"], "--seed"),
    "explore --epochs 0": (["explore", "--epochs", "0"], "epochs"),
    "explore --max-latency-ms -1": (["explore", "--max-latency-ms", "-1"], "max_latency_ms"),
    "explore --max-energy-uj inf": (["explore", "--max-energy-uj", "inf"], "--max-energy-uj"),
    "explore --objectives ''": (["explore", "--objectives", ""], "objectives"),
    "explore --objectives accuracy": (["explore", "--objectives", "accuracy"], "objectives"),
    "explore --algorithm x": (["explore", "--algorithm", "x"], "algorithm"),
    "explore --device tpu": (["explore", "--device", "tpu"], "--device"),
    "explore --hw nothing": (["explore", "--hw", "nothing"], "--hw"),
    "explore --hw =3": (["explore", "--hw", "=3"], "--hw"),
    "explore --data-dir nowhere": (["explore", "-w", "fashion_mnist", "--data-dir", "/nowhere"], "/nowhere"),
    "explore -w nowhere.yaml": (["explore", "-w", "nowhere.yaml"], "nowhere.yaml"),
    "explore --resume nowhere": (["explore", "--resume", "/nowhere/run"], "/nowhere/run"),
    "explore --dask tcp://": (["explore", "--dask", "tcp://"], "--dask"),
    "explore --dask local:x": (["explore", "--dask", "local:x"], "--dask"),
    "explore --mapping nowhere.yaml": (["explore", "--mapping", "nowhere.yaml"], "nowhere.yaml"),
    "cost nowhere.onnx": (["cost", "nowhere.onnx"], "nowhere.onnx"),
    # a refused --hw value names --hw (as explore does), not the accelerator file it overrides
    "cost --hw on a field that does not exist": (
        ["cost", "MODEL", "--hw", "memories.nope.size=8"],
        "--hw: memories",
    ),
    "cost --hw with a value of the wrong kind": (
        ["cost", "MODEL", "--hw", "operational_array.sizes=abc"],
        "--hw: ",
    ),
    "cost -a nowhere": (["cost", "MODEL", "-a", "nowhere"], "nowhere"),
    "cost -a a,,b": (["cost", "MODEL", "-a", "edge_tpu_like,,eyeriss_like"], "-a"),
    "cost --exit-fractions 0.5": (["cost", "MODEL", "--exit-fractions", "0.5"], "--exit-fractions"),
    "cost --exit-fractions -1,1,1": (["cost", "MODEL", "--exit-fractions", "-1,1,1"], "--exit-fractions"),
    "cost --opt speed": (["cost", "MODEL", "--opt", "speed"], "--opt"),
    "cost --input-shape 0,8,8": (["cost", "MODEL", "--input-shape", "0,8,8"], "--input-shape"),
    "report nowhere": (["report", "/nowhere/run"], "/nowhere/run"),
    "infer nowhere": (["infer", "/nowhere/segments"], "/nowhere/segments"),
    "infer --thresholds a,b": (["infer", "/nowhere/segments", "--thresholds", "a,b"], "--thresholds"),
    "accelerators nowhere": (["accelerators", "nowhere.yaml"], "nowhere.yaml"),
}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "net.onnx"
    onnx.save(conv_model(), str(path))
    return path


@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_bad_option(case: str, model_file: Path, tmp: Path, capsys):
    argv, named = OPTION_CASES[case]
    argv = [str(model_file) if a == "MODEL" else a for a in argv]
    if argv[0] == "explore" and "--resume" not in argv:
        argv += ["--runs", str(tmp / "runs")]
    if argv[0] == "cost":
        argv += ["--out", str(tmp / "out"), "--cost-cache", str(tmp / "c.sqlite")]
    one_line_failure(argv, capsys, named)
    assert snapshot(tmp / "runs") == {} and snapshot(tmp / "out") == {}
