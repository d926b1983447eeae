# Two entry points for a fresh machine with only python3:
#   make run   - the demo flow with a local Segment-compatible receiver (runtime packages only)
#   make test  - lint, type-check and the whole test suite (with the dev extras)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.installed-runtime

.PHONY: run test lint typecheck unit bench coverage mutate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# What running needs: the package and its dependencies, no test tools.
$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(RUNTIME_STAMP)

# Everything `make test` and the other targets use: the dev extras too.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP) $(RUNTIME_STAMP)

run: $(RUNTIME_STAMP)
	$(BIN)/python -m flows.cli.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy collector destination_segment flows

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Line and branch coverage of the whole suite, subprocesses included (flows run, push, ...).
coverage: $(STAMP)
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report

# Mutation testing of the modules that decide what is sent and refused (not in CI: slow).
# Results: docs/mutation-survivors.md. `make mutate MUTANTS='flows.http.input*'` runs one module.
MUTANTS ?=
mutate: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,mutation]'
	PATH="$(CURDIR)/$(BIN):$$PATH" FLOWS_SHARED_FIXTURES="$(abspath ../shared/fixtures)" \
		$(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache mutants .coverage .coverage.*
