from __future__ import annotations

import pytest

from codesign.hardware.memory import on_chip_weight_bytes
from codesign.hardware.target import load_hardware


def test_weight_capacity_counts_every_core():
    single, quad = load_hardware("edge_tpu_like"), load_hardware("edge_tpu_x4")
    assert on_chip_weight_bytes(single) == pytest.approx(32 * 1024, rel=1e-3)
    assert on_chip_weight_bytes(quad) == pytest.approx(4 * on_chip_weight_bytes(single))
