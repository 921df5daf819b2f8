from __future__ import annotations

from pathlib import Path

import pytest

from codesign.cost.exits import STATIC
from codesign.cost.report import cost_onnx
from codesign.hardware.target import load_hardware
from tests.cost.test_zigzag import FAST


def test_dvfs_points_scale_energy_and_latency_as_documented(network: Path):
    reports = [
        cost_onnx(
            network,
            "edge_tpu_dvfs",
            exit_fractions=(1.0,),
            options=FAST,
            overrides={"codesign.dvfs.point": p},
        )
        for p in (0, 1, 2)
    ]
    nominal = reports[0]
    for point, report in zip((0, 1, 2), reports, strict=True):
        target = load_hardware("edge_tpu_dvfs", overrides={"codesign.dvfs.point": point})
        op = target.operating_point
        assert report.clock_hz == op.clock_mhz * 1e6
        scale = (op.voltage / op.reference_voltage) ** 2
        # dynamic energy x (V / V_ref)^2, latency in cycles unchanged, seconds follow the clock
        assert report.layers["energy_pj"].sum() == pytest.approx(nominal.layers["energy_pj"].sum() * scale)
        assert report.exits["latency_cycles"].tolist() == nominal.exits["latency_cycles"].tolist()
        static = report.exits[f"energy_{STATIC}_pj"].iloc[-1]
        seconds = report.exits["latency_cycles"].iloc[-1] / report.clock_hz
        assert static == pytest.approx(5e-3 * op.voltage / 0.8 * seconds * 1e12)  # 5 mW at 0.8 V, linear in V
        assert report.expected["energy_pj"] == pytest.approx(report.layers["energy_pj"].sum() + static)
    assert [r.expected["latency_s"] for r in reports] == sorted(r.expected["latency_s"] for r in reports)
