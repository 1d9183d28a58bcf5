"""Environment selection from the CDK context."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_stepfunctions as sfn

from infra.settings import bundle_dependencies, environment_settings
from ksflow.runindex.layout import RUN_INDEXES

DEV = {
    "removal_policy": "destroy",
    "deletion_protection": False,
    "log_retention": "two_weeks",
    "throttle_rate_limit": 5,
    "throttle_burst_limit": 10,
    "callback_throttle_rate_limit": 2,
    "callback_throttle_burst_limit": 4,
    "expiry_grace_seconds": 60,
    "dispatcher_reserved_concurrency": None,
    "state_machine_log_level": "ALL",
    "state_machine_log_execution_data": True,
}


def app(**context: object) -> cdk.App:
    return cdk.App(context={"environments": {"dev": DEV}, **context})


def test_defaults_to_dev() -> None:
    settings = environment_settings(app().node)
    assert settings.name == "dev"
    assert settings.removal_policy == cdk.RemovalPolicy.DESTROY
    assert not settings.retain
    assert settings.dispatcher_reserved_concurrency is None
    assert settings.state_machine_log_level == sfn.LogLevel.ALL


def test_names_are_per_environment() -> None:
    settings = environment_settings(app().node)
    assert (settings.stack_name, settings.service_name, settings.metrics_namespace) == (
        "ksflow-dev", "ksflow-dev", "ksflow/dev")


def test_unknown_environment_is_rejected() -> None:
    with pytest.raises(ValueError, match="staging"):
        environment_settings(app(env="staging").node)


@pytest.mark.parametrize(
    ("value", "expected"), [(None, True), (True, True), ("true", True), (False, False), ("false", False)]
)
def test_bundle_dependencies_flag(value: object, expected: bool) -> None:
    context = {} if value is None else {"bundle_dependencies": value}
    assert bundle_dependencies(app(**context).node) is expected


def test_run_index_count_defaults_to_every_run_index() -> None:
    assert environment_settings(app().node).run_index_count == len(RUN_INDEXES)


def test_run_index_count_from_the_command_line_wins_over_the_environment() -> None:
    environments = {"dev": {**DEV, "run_index_count": 2}}
    assert environment_settings(app(environments=environments).node).run_index_count == 2
    # `-c run_index_count=0` arrives as a string.
    assert environment_settings(app(environments=environments, run_index_count="0").node).run_index_count == 0


@pytest.mark.parametrize("value", [len(RUN_INDEXES) + 1, -1, "-1", "two", 1.5, True])
def test_run_index_count_out_of_range_is_rejected(value: object) -> None:
    with pytest.raises(ValueError, match=f"run_index_count must be a whole number from 0 to {len(RUN_INDEXES)}"):
        environment_settings(app(run_index_count=value).node)
