"""Memory costs that follow size: CACTI 7 (ZigZag's bundled binary) run by codesign, cached in codesign's own
cache, used for memories whose size is overridden or searched."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from codesign.errors import CodesignError
from codesign.hardware import cacti
from codesign.hardware.area import chip_area
from codesign.hardware.cacti import CactiQuery, cacti_costs
from codesign.hardware.target import load_hardware, load_variant

WEIGHTS = "memories.sram_32KB.size"  # edge_tpu_like's weight SRAM, 512-bit reads


def package_pool_digest() -> str:
    """The YAML file ZigZag's own CACTI route appends to, inside the installed package."""
    pool = cacti._cacti_folder() / "example_mem_pool.yaml"
    return hashlib.sha256(pool.read_bytes()).hexdigest()


def test_energy_per_access_and_area_rise_with_size(tmp: Path) -> None:
    before = package_pool_digest()
    sizes = [32 * 1024, 128 * 1024, 512 * 1024]
    targets = [load_hardware("edge_tpu_like", overrides={WEIGHTS: 8 * size}) for size in sizes]
    memories = [t.accelerator_data["memories"]["sram_32KB"] for t in targets]
    reads, writes = [m["r_cost"] for m in memories], [m["w_cost"] for m in memories]
    areas = [chip_area(t).parts["sram_32KB"] for t in targets]
    assert reads == sorted(reads) and len(set(reads)) == 3 and writes == sorted(writes)
    assert areas == sorted(areas) and len(set(areas)) == 3
    assert reads[0] == pytest.approx(15.1119, rel=1e-4) and reads[1] == pytest.approx(45.3196, rel=1e-4)
    assert all(not m["auto_cost_extraction"] for m in memories)  # ZigZag is handed the figures
    assert len({t.digest for t in targets}) == 3  # layer costs are cached per figures
    assert targets[0].notes[0].startswith("memories.sram_32KB: 32,768 bytes, read 15.11 pJ")
    assert package_pool_digest() == before  # nothing written into the installed package
    plain = load_hardware("edge_tpu_like")
    assert not plain.cacti_memories and plain.accelerator_data["memories"]["sram_32KB"]["r_cost"] == 22.9


def test_an_energy_the_overrides_set_stays_and_a_searched_variant_is_priced(tmp: Path) -> None:
    given = load_hardware("edge_tpu_like", overrides={WEIGHTS: 8 * 65536, "memories.sram_32KB.r_cost": 30.0})
    memory = given.accelerator_data["memories"]["sram_32KB"]
    assert memory["r_cost"] == 30.0 and memory["w_cost"] != 52.01 and memory["area"] > 0
    variant = load_variant(load_hardware("edge_tpu_like"), {WEIGHTS: 8 * 65536})
    assert variant.cacti_memories[0].size_bits == 8 * 65536


def test_results_are_cached_in_codesigns_cache_and_reused(tmp: Path, monkeypatch) -> None:
    query = CactiQuery("sram", 96 * 1024, 256, 1, 1, 0)
    first = cacti_costs(query, tmp / "cacti.sqlite")

    def no_cacti(query):
        raise AssertionError("CACTI ran again for a cached query")

    monkeypatch.setattr(cacti, "_run_cacti", no_cacti)
    assert cacti_costs(query, tmp / "cacti.sqlite") == first
    rows = sqlite3.connect(tmp / "cacti.sqlite").execute("SELECT COUNT(*) FROM memory_costs").fetchone()[0]
    assert rows == 1


def _cost_in_process(path: str) -> tuple[float, float, float]:
    costs = cacti_costs(CactiQuery("sram", 48 * 1024, 128, 1, 1, 0), Path(path))
    return costs.read_pj, costs.write_pj, costs.area_mm2


def test_several_processes_at_once_get_the_same_figures_and_one_row(tmp: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.map(_cost_in_process, [str(tmp / "cacti.sqlite")] * 3)
    assert len(set(results)) == 1
    rows = sqlite3.connect(tmp / "cacti.sqlite").execute("SELECT COUNT(*) FROM memory_costs").fetchone()[0]
    assert rows == 1


def test_a_memory_cacti_cannot_model_is_one_line_naming_it() -> None:
    with pytest.raises(
        CodesignError, match=r"edge_tpu_like\.yaml: memories\.sram_32KB: CACTI cannot model a 8-byte"
    ):
        load_hardware("edge_tpu_like", overrides={WEIGHTS: 64})


def test_the_command_line_prices_memories_without_python_on_path(tmp: Path, tiny_model) -> None:
    """ZigZag's own route starts CACTI's helper with the `python` on PATH; codesign needs none."""
    from codesign.deploy.qcdq import export_qcdq

    model = tmp / "tiny.onnx"
    export_qcdq(tiny_model, model)
    empty = tmp / "no-python"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty), "CODESIGN_CACHE_DIR": str(tmp / "cache")}
    codesign = Path(sys.executable).with_name("codesign")
    done = subprocess.run(
        [str(codesign), "cost", str(model), "--hw", f"{WEIGHTS}={8 * 128 * 1024}", "--out", str(tmp / "out"),
         "--lpf-limit", "2"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp / "cache" / "cacti.sqlite").is_file()
    assert "memories.sram_32KB: 131,072 bytes, read 45.32 pJ" in done.stdout
