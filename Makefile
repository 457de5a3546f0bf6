# The two commands of the README: `make demo` runs the main job, `make test` the whole suite.
# Both create the virtual environment (.venv) and install the project into it first.
# `make lint` is the static half of `make test`; `make docs` builds the documentation site into site/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/agentjournal demo

test: lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/journal.py
	$(BIN)/python benchmarks/agent_steps.py
	$(BIN)/python benchmarks/forensics.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site
