"""The command line: `codesign explore | cost | report | infer | accelerators`, one module per command."""

from __future__ import annotations

import argparse
import sys

from codesign.cli import accelerators, cost, explore, infer, report
from codesign.errors import CodesignError

COMMANDS = (explore, cost, report, infer, accelerators)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codesign", description="Co-design quantized early-exit networks and edge accelerators."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except CodesignError as exc:
        print(f"codesign: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codesign: interrupted; finished evaluations are kept in the run store", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
