from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_setup_and_test_commands():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    main, tests = blocks[0].strip(), blocks[1].strip()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert any(line == main or line.startswith(main + " ") for line in ci)
    assert tests in ci


def test_the_readme_plain_commands_are_what_the_makefile_runs():
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    plain = re.search(r"Behind them are the plain commands.*?```\n(.*?)```", readme, flags=re.S)
    assert plain is not None
    for command in plain.group(1).strip().splitlines():
        as_in_make = command.replace(".venv/", "$(VENV)/").replace(
            "python3 -m venv .venv", "$(PYTHON) -m venv $(VENV)"
        )
        assert as_in_make in makefile, command
