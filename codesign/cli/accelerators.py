"""`codesign accelerators`: the accelerator library with its key figures."""

from __future__ import annotations

import argparse
from typing import Any


def add_command(sub: Any) -> None:
    ac = sub.add_parser("accelerators", help="list the accelerator library with key figures")
    ac.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from codesign.hardware.memory import key_figures
    from codesign.hardware.target import accelerator_library, library_names, load_hardware

    rows = [key_figures(load_hardware(name)) for name in library_names()]
    frame = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(frame.drop(columns=["description"]).to_string(index=False))
    print()
    for row in rows:
        print(f"{row['name']:>20}: {row['description']}")
    print(f"\nlibrary: {accelerator_library()} (on-chip KiB per operand excludes the outermost memory level)")
    return 0
