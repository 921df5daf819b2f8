"""Command-line option types and the parser: a bad option value is one line naming the option, exit code 2."""

from __future__ import annotations

import argparse
import math
import sys
from typing import NoReturn

from codesign.errors import CodesignError


class OneLineParser(argparse.ArgumentParser):
    """argparse's parser, but an error is a single line (argparse prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _integer_at_least(minimum: int, text: str, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _integer_at_least(1, text, "a positive integer")


def non_negative_int(text: str) -> int:
    return _integer_at_least(0, text, "a non-negative integer")


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def parse_fractions(text: str) -> tuple[float, ...]:
    return parse_numbers(text, "--exit-fractions", "comma-separated numbers, e.g. 0.6,0.3,0.1", float)


def parse_numbers(text: str, option: str, expected: str, kind: type = float) -> tuple:
    """Comma-separated finite numbers of `kind` from a command-line option, or a one-line error."""
    try:
        values = tuple(kind(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise CodesignError(f"{option} {text!r}: value: expected {expected}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise CodesignError(f"{option} {text!r}: value: expected {expected}")
    return values


DASK_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss", "inproc")


def dask_address(text: str) -> str:
    """`local:N` (a local cluster of N workers) or a scheduler address `[scheme://]host:port`."""
    import re

    if text.startswith("local:"):
        count = text.split(":", 1)[1]
        if count.isdigit() and int(count) >= 1:
            return text
        raise argparse.ArgumentTypeError(f"expected local:N with N workers >= 1, got {text!r}")
    found = re.fullmatch(r"(?:(\w+)://)?([^\s:/]+):(\d+)", text)
    if found and (found.group(1) or "tcp") in DASK_SCHEMES and 0 < int(found.group(3)) < 65536:
        return text
    raise argparse.ArgumentTypeError(
        f"expected a Dask scheduler address such as tcp://host:8786 (or local:N), got {text!r}"
    )
