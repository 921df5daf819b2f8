from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_setup_main_and_test_commands():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    setup, main, tests = blocks[0].strip(), blocks[1].strip(), blocks[2].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert setup in ci.splitlines()
    assert any(line.startswith(main) for line in ci.splitlines())
    assert tests in ci.splitlines()
