"""The package's shape: one folder per pipeline step, data flowing one way, one registry per extension point."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
import yaml

from codesign.config.workload import parse_workload
from codesign.data.registry import DATASETS
from codesign.errors import CodesignError
from codesign.exits import POLICIES
from codesign.network.blocks import BLOCKS
from codesign.registry import Registry
from codesign.search.algorithms import ALGORITHMS
from codesign.search.objectives import OBJECTIVES
from codesign.search.surrogate import PREDICTORS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "codesign"

# The pipeline, earliest first: a module may import from its own step and from earlier ones only.
STEPS = (
    (
        "foundations",
        (
            "codesign.errors",
            "codesign.files",
            "codesign.databases",
            "codesign.registry",
            "codesign.lazy",
            "codesign.machine",
        ),
    ),
    ("candidate", ("codesign.exits", "codesign.thresholds", "codesign.spec", "codesign.space")),
    ("data", ("codesign.data",)),
    ("network", ("codesign.network",)),
    ("deploy", ("codesign.deploy",)),
    ("hardware", ("codesign.hardware",)),
    ("cost", ("codesign.cost",)),
    ("evaluation", ("codesign.evaluation",)),
    ("search", ("codesign.search",)),
    ("config", ("codesign.config",)),
    ("runs", ("codesign.runs",)),
    ("cli", ("codesign.cli",)),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _step(module: str) -> int:
    for rank, (_, prefixes) in enumerate(STEPS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} belongs to no pipeline step: add it to STEPS")


def import_graph() -> nx.DiGraph:
    """Every `import`/`from ... import` between codesign modules, at any depth of the source (function-level
    imports included), read from the source without importing anything."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from codesign.data import local` names a module; `from codesign.x import name` its module
                targets = [
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                    for alias in node.names
                ]
            for target in targets:
                if target.startswith("codesign") and target != name and target in modules:
                    graph.add_edge(name, target)
    return graph


def test_the_package_has_no_import_cycle():
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, f"import cycles: {cycles}"


def test_data_flows_one_way_through_the_pipeline_steps():
    graph = import_graph()
    backwards = [
        f"{source} ({STEPS[_step(source)][0]}) imports {target} ({STEPS[_step(target)][0]})"
        for source, target in graph.edges
        if source != "codesign" and _step(target) > _step(source)
    ]
    assert not backwards, "imports from a later step:\n" + "\n".join(backwards)


def test_every_module_belongs_to_a_step_and_the_top_level_package_imports_lazily():
    graph = import_graph()
    for module in graph.nodes:
        if module != "codesign":
            _step(module)
    assert not list(graph.successors("codesign")), "codesign/__init__ must import its public names lazily"


def test_reading_a_workload_imports_neither_torch_nor_brevitas_nor_zigzag():
    code = (
        "import sys, codesign\n"
        "for name in ('digits', 'fashion_mnist', 'fashion_mnist_deep'):\n"
        "    codesign.load_workload(name)\n"
        "print(sorted(m for m in ('torch', 'brevitas', 'zigzag', 'onnx') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_onnxruntime_runtime_runs_without_torch():
    """A deployed network needs onnxruntime and numpy, not the training stack."""
    code = (
        "import sys\n"
        "from codesign.deploy.runtime import EarlyExitRuntime\n"
        "print(sorted(m for m in ('torch', 'brevitas', 'zigzag') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- registries


def _workload(**sections: object) -> dict:
    base = yaml.safe_load((ROOT / "workloads" / "digits.yaml").read_text())
    for dotted, value in sections.items():
        node = base
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return base


def _block_workload(name: str) -> dict:
    data = _workload()
    data["space"]["stages"][0]["block"] = name
    return data


# Each extension point: its registry, and a workload that names one of its entries.
REGISTRIES = {
    "dataset": (DATASETS, lambda name: _workload(dataset=name)),
    "block": (BLOCKS, _block_workload),
    "exit policy": (POLICIES, lambda name: _workload(space__policies=[name])),
    "objective": (OBJECTIVES, lambda name: _workload(search__objectives=["accuracy", name])),
    "search algorithm": (ALGORITHMS, lambda name: _workload(search__algorithm=name)),
    "surrogate predictor": (PREDICTORS, lambda name: _workload(search__surrogate={"predictors": [name]})),
}


@pytest.mark.parametrize("kind", list(REGISTRIES))
def test_a_workload_accepts_exactly_the_names_of_the_registry(kind: str, monkeypatch: pytest.MonkeyPatch):
    registry, workload_naming = REGISTRIES[kind]
    assert isinstance(registry, Registry) and registry.kind == kind
    for name in registry:
        if kind == "objective" and name == "accuracy":
            continue  # always present: the other objective is the one named
        parse_workload(workload_naming(name), "w.yaml")
    with pytest.raises(CodesignError) as error:
        parse_workload(workload_naming("not-registered"), "w.yaml")
    listed = [name for name in registry if not (kind == "objective" and name == "accuracy")]
    assert str(listed) in str(error.value), "the error lists the registry's names"
    # the validation reads the registry itself: a newly registered name is accepted at once
    monkeypatch.setitem(registry._entries, "not-registered", next(iter(registry.values())))
    parse_workload(workload_naming("not-registered"), "w.yaml")


def test_registering_a_name_twice_is_an_error():
    registry = Registry("thing", {"a": 1})
    with pytest.raises(ValueError, match="registered twice"):
        registry.add("a", 2)
    with pytest.raises(KeyError, match=r"unknown thing 'b': expected one of \['a'\]"):
        registry["b"]


# --------------------------------------------------------------------------- installed package


@pytest.mark.skipif(
    os.environ.get("CODESIGN_SKIP_INSTALL_TEST") == "1", reason="CODESIGN_SKIP_INSTALL_TEST=1"
)
def test_a_non_editable_install_finds_its_libraries_from_another_directory(tmp_path: Path):
    """`pip install .` copies the package; the accelerator and workload libraries must travel with it."""
    target, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    assert (target / "codesign" / "_data" / "accelerators" / "edge_tpu_like.yaml").is_file()
    env = {**os.environ, "PYTHONPATH": str(target), "CODESIGN_CACHE_DIR": str(tmp_path / "cache")}

    def codesign(*args: str) -> str:
        code = "import sys, codesign.cli.main as m; sys.exit(m.main(sys.argv[1:]))"
        done = subprocess.run(
            [sys.executable, "-c", code, *args], cwd=elsewhere, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    where = subprocess.run(
        [sys.executable, "-c", "import codesign; print(codesign.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(target)), f"imported {where} instead of the installed copy"
    listed = codesign("accelerators")
    assert "edge_tpu_like" in listed and str(target) in listed
    out = codesign(
        "explore", "--generations", "1", "--population", "4", "--epochs", "2", "-q", "--run-dir", "run"
    )
    assert "on the Pareto front" in out
    assert (elsewhere / "run" / "pareto.csv").is_file()


def test_every_public_name_resolves():
    """`codesign.__all__` and each step's `__all__` name what their modules define (a module split keeps them)."""
    import importlib

    for package in [
        "codesign",
        *(f"codesign.{p.name}" for p in sorted(PACKAGE.iterdir()) if (p / "__init__.py").is_file()),
    ]:
        module = importlib.import_module(package)
        for name in getattr(module, "__all__", ()):
            assert getattr(module, name, None) is not None, f"{package}.{name}"
