"""`codesign report RUN`: rebuild a run's tables and plots from its run store."""

from __future__ import annotations

import argparse
from typing import Any


def add_command(sub: Any) -> None:
    rp = sub.add_parser("report", help="rebuild a run's tables and plots from its run store")
    rp.add_argument("run", help="run folder (contains run.db)")
    rp.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from codesign.runs.outputs import write_outputs
    from codesign.runs.store import RunStore

    with RunStore.of_run(args.run) as store:
        write_outputs(store.path.parent, store)
    return 0
