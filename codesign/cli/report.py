"""`codesign report RUN`: rebuild a run's tables, plots and report.html from its run store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_command(sub: Any) -> None:
    rp = sub.add_parser(
        "report",
        help="rebuild a run's tables, plots and report.html from its run store; with two runs or more, one page "
        "comparing them",
    )
    rp.add_argument("run", nargs="+", help="run folder (contains run.db); more folders: a comparison page")
    rp.add_argument(
        "--out", help="the comparison page's file (default: RUN_A/compare-RUN_B.html); one run: not used"
    )
    rp.add_argument("--open", action="store_true", help="open the page in the web browser")
    rp.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    rp.add_argument(
        "--cost-cache",
        default=None,
        help="layer-cost cache for the page's per-layer costs (default: the run's, else the user cache)",
    )
    rp.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from codesign.cost.cache import default_cache_path
    from codesign.runs.html_report import REPORT_NAME
    from codesign.runs.outputs import write_comparison_page, write_outputs
    from codesign.runs.store import RunStore

    given_cache = Path(args.cost_cache) if args.cost_cache else None
    if len(args.run) > 1:
        run_dirs = []
        for folder in args.run:  # each must be a run before anything is written
            with RunStore.of_run(folder) as store:
                run_dirs.append(store.path.parent)
        names = "-".join(d.name for d in run_dirs[1:])
        page = Path(args.out) if args.out else run_dirs[0] / f"compare-{names}.html"
        write_comparison_page(run_dirs, page, given_cache)
        if not args.quiet:
            print(
                f"wrote {page} ({page.stat().st_size / 1e6:.1f} MB, opens offline): {' vs '.join(args.run)}"
            )
    else:
        with RunStore.of_run(args.run[0]) as store:
            run_dir = store.path.parent
            recorded = store.cost_cache()
            cache_path = given_cache or (Path(recorded) if recorded else default_cache_path())
            write_outputs(run_dir, store, report=_silent if args.quiet else print, cache_path=cache_path)
        page = (run_dir / REPORT_NAME).resolve()
    if args.open:
        import webbrowser

        if not webbrowser.open(page.resolve().as_uri()) and not args.quiet:
            print(f"no web browser found here: open {page} in one")
    return 0


def _silent(line: str) -> None:
    del line
