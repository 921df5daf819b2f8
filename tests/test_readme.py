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


def readme_commands() -> list[str]:
    """Every `codesign` command the README shows, continuation lines joined, comments dropped."""
    readme = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```(?:bash)?\n(.*?)```", readme, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(".venv/bin/codesign "):
                commands.append(line.removeprefix(".venv/bin/codesign "))
    return commands


def test_every_codesign_command_in_the_readme_parses_with_the_real_command_line():
    import shlex

    from codesign.cli.main import build_parser

    commands = readme_commands()
    assert len(commands) >= 8  # the tour: explore, cost, infer
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(shlex.split(command))  # an unknown option or bad value exits with 2
        assert args.command in {"explore", "cost", "report", "infer", "accelerators"}, command


def test_the_readme_stays_a_guide_and_its_links_exist():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        assert (ROOT / target).exists(), target


def test_the_readmes_workload_example_is_the_embedded_default(tmp_path: Path):
    from codesign.config.workload import load_workload

    readme = (ROOT / "README.md").read_text()
    (example,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, flags=re.S) if b.startswith("dataset: digits")]
    path = tmp_path / "example.yaml"
    path.write_text("name: digits\n" + example)
    shown, shipped = load_workload(path), load_workload("digits")
    assert (shown.space, shown.search, shown.cost) == (shipped.space, shipped.search, shipped.cost)
