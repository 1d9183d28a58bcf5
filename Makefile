# Two commands do all the setup: `make run` serves the API locally, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check
# `make run` needs only what the service and its local stack import; the CDK and the test tools
# (requirements-dev.txt, most of the virtualenv's size) come with the first target that uses them.
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: venv run test lint bench fuzz clean browser

$(BIN)/python:
	@echo "==> Creating the virtualenv $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

# Each stamp is renewed whenever its dependency files or the package metadata change.
$(RUNTIME_STAMP): requirements.txt requirements-local.txt pyproject.toml | $(BIN)/python
	@echo "==> Installing the service, the local stack and the ksflow command (requirements.txt, requirements-local.txt)"
	$(PIP) -e ".[local]"
	touch $@

$(DEV_STAMP): requirements-dev.txt $(RUNTIME_STAMP)
	@echo "==> Installing the CDK and the test tools (requirements-dev.txt)"
	$(PIP) -e ".[local,dev]"
	touch $@

venv: $(DEV_STAMP)

run: $(RUNTIME_STAMP)
	$(BIN)/ksflow local

# The browser tests drive Debian's chromium package headless (Playwright's own browser downloads are not
# used). Installed once, as root or through sudo; silent when it is already there.
browser:
	@command -v "$${KSFLOW_CHROMIUM:-chromium}" >/dev/null || { \
		echo "==> Installing Chromium for the browser tests (Debian's chromium package)"; \
		if [ "$$(id -u)" = 0 ]; then as_root=; elif command -v sudo >/dev/null; then as_root=sudo; else \
			echo "Chromium is missing and this user cannot install it: as root, run" \
				"apt-get install chromium" >&2; exit 1; fi; \
		command -v apt-get >/dev/null || { echo "Chromium is missing and there is no apt-get:" \
			"install Chromium and put it on PATH as chromium, or set KSFLOW_CHROMIUM to its path" >&2; exit 1; }; \
		$$as_root apt-get update -qq && $$as_root env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

test: $(DEV_STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/mypy functions infra app.py
	$(BIN)/python -m pytest

lint: $(DEV_STAMP)
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
# checkov pins an older boto3 than the project does, so it gets a virtualenv of its own, rebuilt when
# requirements-checkov.txt changes. Findings are fixed or skipped in each resource's metadata, with the reason.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV := $(CHECKOV_VENV)/bin/checkov --framework cloudformation --skip-download --compact --quiet
# Prod deploys stop for approval of anything that broadens IAM or security groups (and fail without a
# terminal to ask on); dev deploys do not ask.
REQUIRE_APPROVAL := $(if $(filter prod,$(ENV)),broadening,never)

.PHONY: synth deploy destroy cfn-lint asl-lint checkov

$(CHECKOV_STAMP): requirements-checkov.txt
	@echo "==> Installing checkov into $(CHECKOV_VENV) (requirements-checkov.txt)"
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --disable-pip-version-check --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --disable-pip-version-check -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

# The pinned CLI and validators; reinstalled only when the lock file changes.
$(NODE_MODULES): package.json package-lock.json
	@echo "==> Installing the CDK CLI and the validators (package-lock.json)"
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_MODULES)

asl-lint: $(NODE_MODULES)
	$(NPX) asl-validator $(foreach file,$(ASL_FILES),--json-path $(file))

# The built-in CloudFormation validation stays on here (tests turn it off for speed).
synth: export CDK_VALIDATION ?= true
synth: $(DEV_STAMP) $(NODE_MODULES) $(CHECKOV_STAMP) asl-lint
	rm -rf cdk.out
	$(NPX) cdk synth --no-notices --quiet -c env=$(ENV)
	$(CFN_LINT) cdk.out/*.template.json
	$(CHECKOV) --file cdk.out/*.template.json

# Deploys to the account and region of the current AWS credentials (after `cdk bootstrap`).
# ALARM_EMAIL subscribes an address to the alarm topic.
deploy: $(DEV_STAMP) $(NODE_MODULES)
	$(NPX) cdk deploy --no-notices -c env=$(ENV) --require-approval $(REQUIRE_APPROVAL) \
		$(if $(ALARM_EMAIL),--parameters AlarmEmail=$(ALARM_EMAIL))

destroy: $(DEV_STAMP) $(NODE_MODULES)
	$(NPX) cdk destroy --no-notices -c env=$(ENV) --force

# Lints the templates of the last synth.
cfn-lint: $(DEV_STAMP)
	@test -n "$(wildcard cdk.out/*.template.json)" || { echo "no templates in cdk.out: run make synth"; exit 1; }
	$(CFN_LINT) cdk.out/*.template.json

# Scans the templates of the last synth.
checkov: $(CHECKOV_STAMP)
	@test -n "$(wildcard cdk.out/*.template.json)" || { echo "no templates in cdk.out: run make synth"; exit 1; }
	$(CHECKOV) --file cdk.out/*.template.json
# --- end CDK ---

# Counts AWS calls, state transitions and Lambda invocations per operation; writes .bench/results.json.
# Then the first page of folder contents and of the ingestion list at 10 and 10,000 children
# (.bench/knowledge_listings.json), ingestion throughput and peak memory (.bench/ingestion.json),
# then the API function's cold start against a bare Powertools resolver; writes .bench/cold_start.json.
bench: $(DEV_STAMP)
	$(BIN)/python -W ignore -m benchmarks.cost
	$(BIN)/python -W ignore -m benchmarks.knowledge_listings
	$(BIN)/python -W ignore -m benchmarks.ingestion
	$(BIN)/python -W ignore -m benchmarks.cold_start

# Schema-driven fuzzing of the local stack's OpenAPI document (no 5xx, no undocumented responses).
fuzz: $(DEV_STAMP)
	scripts/fuzz.sh

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) cdk.out .local .bench node_modules .build
