"""Every notebook runs top to bottom on a fresh setup (a real kernel, real training and ZigZag runs)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def cold_cache(tmp_path_factory) -> Path:
    """One empty layer-cost cache for the notebooks: nothing comes from an earlier run on this machine."""
    return tmp_path_factory.mktemp("notebook-cache")


def test_there_are_at_least_three_notebooks_each_opening_with_its_question():
    assert len(NOTEBOOKS) >= 3
    for path in NOTEBOOKS:
        first = nbformat.read(path, as_version=4).cells[0]
        assert first.cell_type == "markdown" and "**Question.**" in first.source, path.name


def test_every_notebook_is_saved_executed_with_its_conclusions():
    """What a reader opens on GitHub is a run of the current notebook: every code cell ran, in order, without
    errors, and the computed conclusions are there."""
    for path in NOTEBOOKS:
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        counts = [c.get("execution_count") for c in cells]
        assert all(counts) and counts == sorted(counts), (path.name, counts)
        outputs = [o for c in cells for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.output_type == "error"], path.name
        assert any("What the numbers say" in o.get("data", {}).get("text/markdown", "") for o in outputs), (
            path.name
        )


def test_notebooks_use_only_the_public_api():
    import codesign

    assert codesign.load_run is not None  # importing the module behind it must not shadow `explore`
    assert callable(codesign.explore)

    for path in NOTEBOOKS:
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert not re.search(r"from codesign\.\w+ import|import codesign\.", code), path.name
        for name in set(re.findall(r"codesign\.(\w+)", code)):
            assert name in codesign.__all__, f"{path.name} uses codesign.{name}, which is not public"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_clean_with_figures_and_computed_conclusions(
    path: Path, tmp_path: Path, cold_cache: Path
):
    notebook = nbformat.read(path, as_version=4)
    # Inherited by the kernel process: an empty cache, and one OpenMP thread, since PyTorch's threads next to
    # any other busy process (a benchmark, another test run) slow small networks down by an order of magnitude.
    patch = {"CODESIGN_CACHE_DIR": str(cold_cache), "OMP_NUM_THREADS": "1"}
    saved = {k: os.environ.get(k) for k in patch}
    os.environ.update(patch)
    try:
        client = NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        )
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no inline figure"
    conclusions = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert conclusions and "What the numbers say" in conclusions[-1]
    assert re.search(r"\d+\.\d", conclusions[-1])  # numbers computed by this run, not prose
