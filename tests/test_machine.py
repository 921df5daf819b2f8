"""Thread and process counts follow the cores a process may use (its affinity mask), not the machine's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2, reason="one core")
def test_a_process_pinned_to_one_core_uses_one_thread_and_no_worker_processes():
    script = (
        "import os; from codesign.machine import usable_cpus; from codesign.cli.explore import auto_workers;"
        "os.sched_setaffinity(0, set(range(os.cpu_count()))); wide = (usable_cpus(), auto_workers(1000));"
        "os.sched_setaffinity(0, {0}); print(*wide, usable_cpus(), auto_workers(1000))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    cores = os.cpu_count()
    assert done.stdout.split() == [str(cores), str(cores), "1", "1"]
