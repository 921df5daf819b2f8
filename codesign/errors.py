"""The error policy, said once.

- Input from a user (a workload or accelerator file, a command-line option, an ONNX file, a run folder, a
  dataset folder) that is wrong raises `CodesignError` with one line naming the file (or option), the field
  and what was expected: `input_error` builds it. The command line prints it without a traceback and exits
  with code 2. Input is checked where it enters (the `config` parsers, `hardware.target`, `cost.graph`,
  `deploy.segments`, `runs.store`), so later steps can rely on it.
- Anything else is a programming error and raises the usual Python exception (`ValueError`, `KeyError`, ...)
  with its traceback. `assert` is never used for control flow.
"""

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
