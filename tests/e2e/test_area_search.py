"""Memory size co-searched with chip area as an objective: a larger weight SRAM costs more area and more energy
per access (CACTI), a smaller one streams the weights it cannot hold; a digits search over two sizes returns both."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from codesign.cli.main import main
from tests.conftest import explore_argv

SIZES = [16384, 524288]  # bits: 2 KiB (the weights do not fit) and 64 KiB of weight SRAM on edge_tpu_like
WORKLOAD = {
    "name": "area",
    "dataset": "digits",
    "accelerator": "edge_tpu_like",
    "hardware": {"search": {"memories.sram_32KB.size": SIZES}},
    "space": {
        "stages": [
            {"depth": 1, "width": [8, 16], "stride": 1, "weight_bits": 8, "act_bits": 8},
            {"depth": 1, "width": [16, 32], "stride": 2, "weight_bits": 8, "act_bits": 8},
            {"depth": 1, "width": [32, 64], "stride": 2, "weight_bits": 8, "act_bits": 8},
        ],
        "exit_fractions": [0.3, 0.6],
    },
    "training": {"supernet": {"epochs": 2, "random_subnets": 1, "head_epochs": 2},
                 "finetune": {"head_steps": 5, "final_epochs": 0.05}},
    "cost": {"lpf_limit": 2},
    "search": {"population": 8, "generations": 2, "seed": 0, "objectives": ["accuracy", "energy", "area"]},
}  # fmt: skip


def test_a_search_over_two_weight_sram_sizes_returns_both_when_area_is_an_objective(
    tmp: Path, capsys
) -> None:
    path = tmp / "area.yaml"
    path.write_text(yaml.safe_dump(WORKLOAD))
    run = tmp / "run"
    assert main(explore_argv(path, run, tmp / "cache" / "layer_costs.sqlite", "-q", "--workers", "1")) == 0
    out = capsys.readouterr().out
    assert (
        out.count("memory cost from CACTI: memories.sram_32KB") == 2
    )  # both sizes, stated before the search
    config = json.loads((run / "config.json").read_text())
    assert len(config["memory_costs"]) == 2 and "2,048 bytes" in config["memory_costs"][0]
    front = pd.read_csv(run / "pareto.csv")
    sizes = {
        int(value) for value in front["hardware"].str.extract(r"memories\.sram_32KB\.size=(\d+)")[0].dropna()
    }
    assert sizes == set(SIZES), front[["key", "hardware", "chip_area", "expected_energy_pj"]]
    by_size = front.assign(size=front["hardware"].str.extract(r"size=(\d+)")[0].astype(int))
    assert (
        by_size.groupby("size")["chip_area"].max()[SIZES[0]]
        < by_size.groupby("size")["chip_area"].min()[SIZES[1]]
    )
