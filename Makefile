# Two commands do all the setup: `make run` serves the API locally, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: venv run test lint bench fuzz clean

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
# `make synth [ENV=prod]`: offline synth into cdk.out/ (cdk-nag runs inside the app), then cfn-lint.
ENV ?= dev
ALARM_EMAIL ?=
NPX := npx --no-install
NODE_MODULES := node_modules/.package-lock.json
ASL_FILES := $(wildcard functions/ksflow/orchestration/*.asl.json)
# W3005 flags the explicit DependsOn CDK adds next to a GetAtt; harmless.
CFN_LINT := $(BIN)/cfn-lint --ignore-checks W3005 --

.PHONY: synth deploy destroy cfn-lint asl-lint

# The pinned CLI and validators; reinstalled only when the lock file changes.
$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_MODULES)

asl-lint: $(NODE_MODULES)
	$(NPX) asl-validator $(foreach file,$(ASL_FILES),--json-path $(file))

# The built-in CloudFormation validation stays on here (tests turn it off for speed).
synth: export CDK_VALIDATION ?= true
synth: $(STAMP) $(NODE_MODULES) asl-lint
	rm -rf cdk.out
	$(NPX) cdk synth --no-notices --quiet -c env=$(ENV)
	$(CFN_LINT) cdk.out/*.template.json

# Deploys to the account and region of the current AWS credentials (after `cdk bootstrap`).
# ALARM_EMAIL subscribes an address to the alarm topic.
deploy: $(STAMP) $(NODE_MODULES)
	$(NPX) cdk deploy --no-notices -c env=$(ENV) --require-approval never \
		$(if $(ALARM_EMAIL),--parameters AlarmEmail=$(ALARM_EMAIL))

destroy: $(STAMP) $(NODE_MODULES)
	$(NPX) cdk destroy --no-notices -c env=$(ENV) --force

# Lints the templates of the last synth.
cfn-lint: $(STAMP)
	@test -n "$(wildcard cdk.out/*.template.json)" || { echo "no templates in cdk.out: run make synth"; exit 1; }
	$(CFN_LINT) cdk.out/*.template.json
# --- end CDK ---

# Counts AWS calls, state transitions and Lambda invocations per operation; writes .bench/results.json.
bench: $(STAMP)
	$(BIN)/python -W ignore -m benchmarks.cost

# Schema-driven fuzzing of the local stack's OpenAPI document (no 5xx, no undocumented responses).
fuzz: $(STAMP)
	scripts/fuzz.sh

clean:
	rm -rf $(VENV) cdk.out .local .bench node_modules .build
