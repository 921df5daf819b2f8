"""The command line: `codesign explore | cost | report | infer | accelerators`, one module per command."""

from __future__ import annotations

import argparse
import errno
import sqlite3
import sys
from importlib.metadata import version

from codesign.cli import accelerators, cost, explore, infer, report
from codesign.cli.options import OneLineParser
from codesign.errors import CodesignError

COMMANDS = (explore, cost, report, infer, accelerators)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="codesign", description="Co-design quantized early-exit networks and edge accelerators."
    )
    parser.add_argument("--version", action="version", version=f"codesign {version('codesign')}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for command in COMMANDS:
        command.add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command. Errors a user can cause end in one line and exit code 2: `CodesignError`, and the
    file-system and SQLite errors of the files and folders the user named; anything else is a bug and
    keeps its traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except CodesignError as exc:
        return _fail(str(exc))
    except OSError as exc:
        where = exc.filename or "file system"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return _fail(
                f"{where}: {exc.strerror}: expected room to write it; free space on its disk (finished work is "
                "kept: `codesign explore --resume RUN` continues a run)"
            )
        return _fail(
            f"{where}: {exc.strerror or exc}: expected a readable (and, for outputs, writable) path; choose another"
        )
    except sqlite3.Error as exc:
        return _fail(
            f"SQLite: {exc}: expected a usable run store and layer-cost cache; choose another --run-dir or --cost-cache"
        )
    except MemoryError:
        return _fail(
            "memory: expected networks that fit this machine's memory; choose smaller widths or depths in the workload"
        )
    except KeyboardInterrupt:
        print("codesign: interrupted; finished evaluations are kept in the run store", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    print(f"codesign: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
