"""`codesign report RUN`: rebuild a run's tables, plots and report.html from its run store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_command(sub: Any) -> None:
    rp = sub.add_parser("report", help="rebuild a run's tables, plots and report.html from its run store")
    rp.add_argument("run", help="run folder (contains run.db)")
    rp.add_argument("--open", action="store_true", help="open report.html in the web browser")
    rp.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    rp.add_argument(
        "--cost-cache",
        default=None,
        help="layer-cost cache for the page's per-layer costs (default: the user cache)",
    )
    rp.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from codesign.cost.cache import default_cache_path
    from codesign.runs.html_report import REPORT_NAME
    from codesign.runs.outputs import write_outputs
    from codesign.runs.store import RunStore

    cache_path = Path(args.cost_cache) if args.cost_cache else default_cache_path()
    with RunStore.of_run(args.run) as store:
        run_dir = store.path.parent
        write_outputs(run_dir, store, report=_silent if args.quiet else print, cache_path=cache_path)
    page = (run_dir / REPORT_NAME).resolve()
    if args.open:
        import webbrowser

        if not webbrowser.open(page.as_uri()) and not args.quiet:
            print(f"no web browser found here: open {page} in one")
    return 0


def _silent(line: str) -> None:
    del line
