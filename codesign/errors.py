"""User-facing errors: one line that names the file, the field and what was expected."""

from __future__ import annotations

from pathlib import Path


class CodesignError(Exception):
    """An error caused by user input; the CLI prints it as a single line, without a traceback."""


def input_error(source: str | Path, field: str, expected: str, got: object = None) -> CodesignError:
    """Build the standard one-line message: `<file>: <field>: expected <what>[, got <value>]`."""
    message = f"{source}: {field}: expected {expected}"
    if got is not None:
        shown = repr(got)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        message += f", got {shown}"
    return CodesignError(message)
