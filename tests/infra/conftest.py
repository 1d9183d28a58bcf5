"""Synthesizes the stack once per environment for the infrastructure tests."""

from __future__ import annotations

import os

# Read by the CDK's node process, which starts on the first `aws_cdk` import: set before it. The built-in
# CloudFormation validation doubles synth time; `make synth` keeps it on.
os.environ.setdefault("CDK_VALIDATION", "false")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# `infra` is not an installed package; make it importable however pytest is started.
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from infra.stack import KsflowStack, add_stack  # noqa: E402


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]
    return context


@dataclass(frozen=True)
class Synth:
    env: str
    stack: KsflowStack
    template: Template
    outdir: Path
    context: dict[str, Any]

    @property
    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = self.context["environments"][self.env]
        return settings


def synth(env: str, outdir: Path, **overrides: Any) -> Synth:
    """`overrides`: context given as `-c key=value` would be."""
    # A bare App does not read cdk.json; load it as the CLI would. No dependency bundling: fast, offline.
    # Annotations stay out of the validation report, so a nag finding reaches the assertion that lists it
    # instead of aborting the synth (which is what `make synth` does).
    context = {
        **cdk_json_context(),
        "env": env,
        "bundle_dependencies": False,
        "@aws-cdk/core:annotationsInValidationReport": False,
        **overrides,
    }
    app = cdk.App(context=context, outdir=str(outdir))
    stack = add_stack(app)
    return Synth(env=env, stack=stack, template=Template.from_stack(stack), outdir=outdir, context=context)


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth("dev", tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth("prod", tmp_path_factory.mktemp("cdk-prod"))
