# The README's two commands: `make explore` sets everything up and runs the default search,
# `make test` runs the tests. Each installs first if the virtual environment is missing or stale.
PYTHON ?= python3
VENV := .venv
EXPLORE_ARGS ?=

.PHONY: explore test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install torch==2.13.0 && $(VENV)/bin/pip install -e ".[dev]"
	touch $@

explore: $(VENV)/.installed
	$(VENV)/bin/codesign explore $(EXPLORE_ARGS)

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest
