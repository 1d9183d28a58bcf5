"""Per-environment settings, read from the CDK context (`cdk.json` plus `-c key=value`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Node

from ksflow.runindex.layout import RUN_INDEXES

ENV_KEY = "env"
ENVIRONMENTS_KEY = "environments"
BUNDLE_KEY = "bundle_dependencies"
# Also read at the top level, so `-c run_index_count=N` steps an existing stack through the run indexes
# (one per deploy) without editing cdk.json.
RUN_INDEX_COUNT_KEY = "run_index_count"


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
    # None leaves the dispatcher unreserved: reserving fails a deploy that would leave the account fewer
    # than 100 unreserved concurrent executions, which small (dev) accounts hit.
    dispatcher_reserved_concurrency: int | None
    state_machine_log_level: sfn.LogLevel
    state_machine_log_execution_data: bool
    # How many of RUN_INDEXES (the first N) the table has: CloudFormation adds one index per stack update.
    run_index_count: int
    # Origins besides the API's own whose pages may PUT direct-upload parts to the documents bucket.
    upload_cors_origins: tuple[str, ...] = ()

    @property
    def retain(self) -> bool:
        return self.removal_policy == cdk.RemovalPolicy.RETAIN

    @property
    def stack_name(self) -> str:
        return f"ksflow-{self.name}"

    @property
    def service_name(self) -> str:
        """The `service` of logs and metrics, so two environments in one account never share a metric."""
        return self.stack_name

    @property
    def metrics_namespace(self) -> str:
        return f"ksflow/{self.name}"


def _as_bool(value: Any) -> bool:
    # `-c flag=false` arrives as the string "false"; cdk.json gives a real boolean.
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _run_index_count(value: Any) -> int:
    """`value` from cdk.json (a number) or `-c` (a string); absent: every run index."""
    limit = len(RUN_INDEXES)
    if value is None:
        return limit
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdecimal() or int(text) > limit:
        raise ValueError(f"{RUN_INDEX_COUNT_KEY} must be a whole number from 0 to {limit} (how many of the run "
                         f"indexes, in deploy order, the table has); got {value!r}")
    return int(text)


def environment_settings(node: Node) -> EnvironmentSettings:
    name = str(node.try_get_context(ENV_KEY) or "dev")
    environments = node.try_get_context(ENVIRONMENTS_KEY) or {}
    if name not in environments:
        raise ValueError(f"unknown environment {name!r}; cdk.json defines {sorted(environments)}")
    raw = environments[name]
    override = node.try_get_context(RUN_INDEX_COUNT_KEY)
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
        dispatcher_reserved_concurrency=_optional_int(raw.get("dispatcher_reserved_concurrency")),
        state_machine_log_level=sfn.LogLevel[str(raw["state_machine_log_level"]).upper()],
        state_machine_log_execution_data=_as_bool(raw["state_machine_log_execution_data"]),
        run_index_count=_run_index_count(raw.get(RUN_INDEX_COUNT_KEY) if override is None else override),
        upload_cors_origins=tuple(str(origin).rstrip("/") for origin in raw.get("upload_cors_origins", [])),
    )


def bundle_dependencies(node: Node) -> bool:
    value = node.try_get_context(BUNDLE_KEY)
    return True if value is None else _as_bool(value)
