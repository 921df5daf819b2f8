"""report.html of a small digits run, rendered in a real headless Chromium with the network blocked."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

TINY = {
    "name": "tiny-report",
    "dataset": "digits",
    "accelerator": "edge_tpu_like",
    "space": {
        "stages": [
            {"depth": 1, "width": [8, 16], "stride": 1, "weight_bits": [4, 8], "act_bits": 8},
            {"depth": 1, "width": 16, "stride": 2, "weight_bits": 8, "act_bits": 8},
            {"depth": 1, "width": [16, 32], "stride": 2, "weight_bits": 8, "act_bits": 8},
        ],
        # tuned per candidate and re-tuned after the final fine-tuning: returned networks change keys
        "threshold_tuning": {"max_accuracy_drop": 0.01},
    },
    "training": {
        "supernet": {"epochs": 1, "random_subnets": 1},
        "finetune": {"head_steps": 2, "final_epochs": 0.05},
    },
    "cost": {"lpf_limit": 2},
    "search": {"population": 6, "generations": 2, "seed": 0, "constraints": {"max_energy_uj": 0.02}},
}


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="no Chromium here (apt-get install chromium); CI installs it and never skips",
)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codesign.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


def browser(*args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium that cannot reach any host: the page must work offline."""
    assert CHROMIUM is not None, "CI must install Chromium (.ci/run does)"
    return subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=15000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    workload = folder / "tiny.yaml"
    workload.write_text(yaml.safe_dump(TINY))
    run_dir = folder / "run"
    done = cli(
        "explore", "-w", str(workload), "--baseline", "--run-dir", str(run_dir), "-q", "-j", "1",
        "--cost-cache", str(folder / "cache" / "layer_costs.sqlite"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "report.html" in done.stdout and "opens offline" in done.stdout
    return run_dir


def evaluations(run_dir: Path) -> int:
    with sqlite3.connect(run_dir / "run.db") as connection:
        return connection.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]


def page_data(page: str) -> dict:
    import json

    found = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)
    assert found, "the page carries its data"
    return json.loads(found.group(1))


def test_the_page_is_one_self_contained_file_with_every_candidate(run: Path):
    page = (run / "report.html").read_text()
    assert "<script src" not in page and "<link" not in page  # nothing fetched: Plotly is inline
    data = page_data(page)
    assert len(data["candidates"]) == evaluations(run)
    returned = [c for c in data["candidates"] if c["returned"]]
    assert returned and all(c["split"] == "test" for c in returned)
    assert data["static_front"], "the --baseline front is on the page"
    assert not all(c["feasible"] for c in data["candidates"]), "the energy constraint is violated by some"
    for c in returned:  # per-layer costs of every returned network, energies adding up to the network's
        layers = data["layers"][c["key"]]
        assert layers and {"MAC"} <= set(layers[0]["parts_nj"])
        assert c["exits"][-1]["energy_nj"] == pytest.approx(
            sum(layer["energy_nj"] for layer in layers), rel=1e-6
        )
    assert {"codesign", "zigzag-dse", "torch"} <= set(data["versions"])
    assert data["accelerator"]["name"] == "edge_tpu_like"
    assert len(data["hypervolume"]) == 2


@needs_browser
def test_the_page_renders_in_chromium_offline_with_one_point_per_candidate(run: Path, tmp_path: Path):
    url = (run / "report.html").resolve().as_uri()
    dom = browser("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html_tag = re.search(r"<html[^>]*>", dom.stdout).group(0)
    assert 'data-ready="1"' in html_tag, html_tag  # the page's script ran to its end
    assert "data-js-errors" not in html_tag, html_tag
    points = re.search(r'data-candidate-points="(\d+)"', html_tag)
    assert points and int(points.group(1)) == evaluations(run)
    assert dom.stdout.count('class="point"') >= evaluations(run)  # drawn as SVG markers
    assert "energy to take each exit" in dom.stdout  # the details of the most accurate network
    assert "how ZigZag mapped each layer" in dom.stdout and "innermost first" in dom.stdout
    screenshot = tmp_path / "report.png"
    shot = browser("--window-size=1400,1500", f"--screenshot={screenshot}", url)
    assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(screenshot)
    assert pixels.shape[:2] == (1500, 1400) and float(np.std(pixels[..., :3])) > 0.05  # not a blank page


def test_report_rebuilds_the_same_page_and_opens_it(run: Path, tmp_path: Path):
    before = (run / "report.html").read_bytes()
    (run / "report.html").unlink()
    opener = tmp_path / "browser.sh"
    opened = tmp_path / "opened.txt"
    opener.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    opener.chmod(0o755)
    done = cli("report", str(run), "--open", env={"BROWSER": str(opener)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert (run / "report.html").read_bytes() == before
    for _ in range(50):  # the browser is started in the background
        if opened.is_file() and opened.read_text().strip():
            break
        import time

        time.sleep(0.1)
    assert opened.read_text().strip() == (run / "report.html").resolve().as_uri()


def html_tag(dom: str) -> dict[str, str]:
    tag = re.search(r"<html[^>]*>", dom).group(0)
    return dict(re.findall(r'(data-[\w-]+)="([^"]*)"', tag)) | (
        {"errors": "yes"} if "data-js-errors" in tag else {}
    )


@needs_browser
def test_the_dashboard_sorts_filters_and_selects_with_one_network_highlighted_everywhere(run: Path):
    import pandas as pd

    candidates = pd.read_csv(run / "candidates.csv")
    stages = {part for backbone in candidates["backbone"] for part in backbone.split(" | ")}
    counts = {part: int(candidates["backbone"].str.contains(part, regex=False).sum()) for part in stages}
    word = next(part for part, count in sorted(counts.items()) if 0 < count < len(candidates))  # splits them
    expected_rows = counts[word]
    shown = candidates[candidates["backbone"].str.contains(word, regex=False)]
    chosen = shown.sort_values("expected_energy_pj").iloc[-1]  # selected and shown in the filtered table
    url = (
        run / "report.html"
    ).resolve().as_uri() + f"#sort=energy_nj&desc=0&filter={word}&select={chosen['key']}"
    dom = browser("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    attributes = html_tag(dom.stdout)
    assert "errors" not in attributes and attributes["data-ready"] == "1"
    assert attributes["data-sorted-by"] == "energy_nj asc"
    assert int(attributes["data-candidate-rows"]) == expected_rows
    assert attributes["data-selected"] == chosen["key"]
    table = dom.stdout[dom.stdout.index('id="candidates"') :]
    energies = [
        float(v)
        for v in re.findall(
            r'<tr class="clickable[^"]*" data-index="\d+">(?:<td[^>]*>[^<]*</td>){3}<td[^>]*>([\d.e+-]+)</td>',
            table,
        )
    ]
    assert len(energies) == expected_rows and energies == sorted(energies)
    assert re.search(
        rf'<tr class="clickable[^"]*selected[^"]*" data-index="\d+"><td class="text">{chosen["key"]}',
        dom.stdout,
    )
    assert "how ZigZag mapped each layer" in dom.stdout  # the selected network's details, per-layer mapping
    assert int(attributes["data-ready-ms"]) <= 1000  # interactive within a second of the page being loaded
    assert (run / "report.html").stat().st_size <= 5e6


@needs_browser
def test_two_runs_compare_on_one_page(run: Path, tmp_path: Path):
    page = tmp_path / "compare.html"
    done = cli("report", str(run), str(run / "baseline"), "--out", str(page))
    assert done.returncode == 0, done.stderr[-2000:]
    dom = browser("--dump-dom", page.resolve().as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    attributes = html_tag(dom.stdout)
    assert "errors" not in attributes and attributes["data-runs"] == "2"
    assert int(attributes["data-candidate-points"]) == evaluations(run) + evaluations(run / "baseline")
    assert "returned by run" in dom.stdout and "returned by baseline" in dom.stdout
    assert page.stat().st_size <= 6e6
