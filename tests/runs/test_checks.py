from __future__ import annotations

from pathlib import Path

import pytest

from codesign.errors import CodesignError
from codesign.hardware.target import load_hardware


def test_strided_exit_head_that_leaves_too_small_a_map_to_pool_gets_one_line_error(tmp: Path):
    from codesign.config.workload import load_workload
    from codesign.data.registry import load_dataset
    from codesign.runs.setup import prepare_space

    path = tmp / "w.yaml"
    path.write_text(
        "space:\n  stages:\n    - {depth: 1, width: 8, stride: 2}\n    - {depth: 1, width: 8, stride: 2}\n"
        "    - {depth: 1, width: 8, stride: 1}\n"
        "  exit_branches: {convs: 1, stride: [1, 2], pool: 2}\n"
    )
    workload = load_workload(path)  # digits: 8x8 -> 4x4 -> 2x2; a stride-2 head after stage 1 sees 1x1
    with pytest.raises(CodesignError) as error:
        prepare_space(workload, load_dataset("digits", seed=0), load_hardware("edge_tpu_like"))
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "space.exit_branches.stride" in message
    assert "1x1" in message
