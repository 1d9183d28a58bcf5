# Two commands do all the setup: `make run` serves the API locally, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: venv run test test-fast lint synth bench clean

# The virtualenv is rebuilt whenever the dependency files or the package metadata change.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/ksflow local

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy functions infra app.py
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy functions infra app.py

# --- CDK (synth target owned by infra/) ---
synth: $(STAMP)
	@echo "synth: not yet wired" && exit 1
# --- end CDK ---

clean:
	rm -rf $(VENV) cdk.out .local .bench node_modules .build
