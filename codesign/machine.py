"""The CPU cores this process may use: its affinity mask (set by `taskset`, a container's cpuset or a test
runner pinning its workers), not every core of the machine. Thread and process counts default to it."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
