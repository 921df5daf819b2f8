"""Run Stream (stream-dse, Python >= 3.12) on one ONNX network and one Stream hardware file; print JSON.

Runs inside the Stream virtual environment made by `benchmarks/stream/setup.sh`, started by
`benchmarks/stream_comparison.py`; it imports nothing from codesign (which runs on Python 3.11).
Output: total latency (cycles) and energy (pJ), and per fused group its layers, cycles, energy and
the cores each layer was split over.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time


def main(hardware: str, model: str, time_limit_s: float) -> dict:
    warnings: list[str] = []
    handler = _Collect(warnings)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.WARNING)
    from stream.api import SolveOptions, evaluate_mapping

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        estimate = evaluate_mapping(
            hardware, model, scratch, options=SolveOptions(time_limit_s=time_limit_s, artifacts=False)
        )
    groups = []
    for index, report in sorted(estimate.context.get("group_allocations").items()):
        energy = report["performance"]["energy"]
        cores = {
            name: sorted(
                entry["id"]
                for slot in node["resource_allocation"]
                for entry in slot
                if entry.get("type") == "core"
            )
            for name, node in report["mapping_nodes"].items()
            if not name.startswith("Transfer(")
        }
        groups.append(
            {
                "group": index,
                "layers": [layer for group in report["fused_groups"] for layer in group["layers"]],
                "cycles": report["latency"]["total"],
                "node_energy_pj": energy["node_pj_per_iteration"] * _iterations(energy),
                "transfer_energy_pj": energy["transfer_pj_per_iteration"] * _iterations(energy),
                "energy_pj": energy["total_pj"],
                "bound": report["performance"]["bottleneck"],
                "solve_status": report["solve"]["status"],
                "fallback": sorted(n for n, v in report["performance"]["nodes"].items() if v.get("fallback")),
                "cores": cores,
            }
        )
    return {
        "cycles": estimate.cycles,
        "energy_pj": sum(group["energy_pj"] for group in groups),
        "groups": groups,
        "seconds": time.perf_counter() - started,
        "warnings": sorted(set(warnings)),
    }


class _Collect(logging.Handler):
    """Keeps Stream's warnings (such as a layer ZigZag could not map, priced at ideal cycles) for the report."""

    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def _iterations(energy: dict) -> float:
    per = energy["per_iteration_pj"]
    return energy["total_pj"] / per if per else 0.0


if __name__ == "__main__":
    hardware_path, model_path, limit = (
        sys.argv[1],
        sys.argv[2],
        float(sys.argv[3]) if len(sys.argv) > 3 else 60.0,
    )
    json.dump(main(hardware_path, model_path, limit), sys.stdout)
