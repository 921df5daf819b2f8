"""Thread and process counts follow the cores a process may use (its affinity mask), not the machine's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="one core")
def test_a_process_pinned_to_one_core_uses_one_thread_and_no_worker_processes():
    script = (
        "import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]});"
        "from codesign.machine import usable_cpus; from codesign.cli.explore import auto_workers;"
        "print(usable_cpus(), auto_workers(1000))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "1"]
    from codesign.machine import usable_cpus

    assert usable_cpus() == len(os.sched_getaffinity(0)) <= (os.cpu_count() or 1)
