"""Per-environment settings, read from the CDK context (`cdk.json` plus `-c key=value`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from constructs import Node

ENV_KEY = "env"
ENVIRONMENTS_KEY = "environments"
BUNDLE_KEY = "bundle_dependencies"


@dataclass(frozen=True)
class EnvironmentSettings:
    name: str
    removal_policy: cdk.RemovalPolicy
    deletion_protection: bool
    log_retention: logs.RetentionDays
    throttle_rate_limit: int
    throttle_burst_limit: int
    callback_throttle_rate_limit: int
    callback_throttle_burst_limit: int
    expiry_grace_seconds: int

    @property
    def retain(self) -> bool:
        return self.removal_policy == cdk.RemovalPolicy.RETAIN


def _as_bool(value: Any) -> bool:
    # `-c flag=false` arrives as the string "false"; cdk.json gives a real boolean.
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def environment_settings(node: Node) -> EnvironmentSettings:
    name = str(node.try_get_context(ENV_KEY) or "dev")
    environments = node.try_get_context(ENVIRONMENTS_KEY) or {}
    if name not in environments:
        raise ValueError(f"unknown environment {name!r}; cdk.json defines {sorted(environments)}")
    raw = environments[name]
    return EnvironmentSettings(
        name=name,
        removal_policy=cdk.RemovalPolicy[str(raw["removal_policy"]).upper()],
        deletion_protection=_as_bool(raw["deletion_protection"]),
        log_retention=logs.RetentionDays[str(raw["log_retention"]).upper()],
        throttle_rate_limit=int(raw["throttle_rate_limit"]),
        throttle_burst_limit=int(raw["throttle_burst_limit"]),
        callback_throttle_rate_limit=int(raw["callback_throttle_rate_limit"]),
        callback_throttle_burst_limit=int(raw["callback_throttle_burst_limit"]),
        expiry_grace_seconds=int(raw["expiry_grace_seconds"]),
    )


def bundle_dependencies(node: Node) -> bool:
    value = node.try_get_context(BUNDLE_KEY)
    return True if value is None else _as_bool(value)
