"""Fixtures for the API-level unit tests, on top of the shared ones in tests/conftest.py."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from ksflow.identity import store as identity
from ksflow.identity.models import CreatedTenant, CreatedUser, Role
from ksflow.observability import logger as service_logger
from ksflow.workflows import webhooks
from tests.conftest import RUNNER_SECRET, Response, Runner, call_api, definition_body, wait_for
from tests.unit.seeded_runs import world  # noqa: F401  (a fixture: runs placed in time)

PUBLIC_RUNNER_URL = "https://93.184.216.34/runner"

def table_dump() -> str:
    """Every item in the table as one string, to look for values that must never be stored."""
    table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
    items: list[dict[str, Any]] = []
    response = table.scan()
    items += response["Items"]
    while "LastEvaluatedKey" in response:
        response = table.scan(ExclusiveStartKey=response["LastEvaluatedKey"])
        items += response["Items"]
    return json.dumps(items, default=str)


def signed(body: str, secret: str = RUNNER_SECRET, at: datetime | None = None,
           message_id: str | None = None) -> dict[str, str]:
    return webhooks.sign_headers(secret, message_id or f"msg_{uuid.uuid4().hex}", at or datetime.now(UTC), body)


def callback(run_id: str, payload: dict[str, Any] | None = None, *, raw_body: str | None = None,
             secret: str | None = RUNNER_SECRET, at: datetime | None = None, api_key: str | None = None) -> Response:
    """POST the runner callback, signed with `secret` unless it is None."""
    body = raw_body if raw_body is not None else json.dumps(payload)
    headers = signed(body, secret, at) if secret is not None else {}
    return call_api("POST", f"/v1/workflow-runs/{run_id}/callback", headers=headers, raw_body=body, api_key=api_key)


def get_run(run_id: str, api_key: str) -> dict[str, Any]:
    response = call_api("GET", f"/v1/workflow-runs/{run_id}", api_key=api_key)
    assert response.status == 200, response.body
    return dict(response.body)


def execution_arn(env: dict[str, str], workflow_id: str) -> str:
    return env["RUN_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:") + ":" + workflow_id


def execution_status(env: dict[str, str], workflow_id: str) -> str:
    """The execution's status once it stopped running (waits for that)."""
    client = boto3.client("stepfunctions")
    arn = execution_arn(env, workflow_id)
    return str(wait_for(lambda: (s := client.describe_execution(executionArn=arn)["status"]) != "RUNNING" and s))


def execution_count(env: dict[str, str]) -> int:
    client = boto3.client("stepfunctions")
    return len(client.list_executions(stateMachineArn=env["RUN_STATE_MACHINE_ARN"])["executions"])


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every line the service logs during the test, formatted as the Lambda would print it."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(service_logger.registered_formatter)
    target = logging.getLogger(service_logger.name)
    target.addHandler(handler)
    yield lines
    target.removeHandler(handler)


@pytest.fixture
def member(tenant: CreatedTenant) -> CreatedUser:
    """A USER of the tenant with no grants."""
    return identity.create_user(tenant.tenant_id, "member@acme.test", Role.USER)


@pytest.fixture
def grant(tenant: CreatedTenant) -> Callable[[str, str, str], None]:
    """Give a USER a capability (READ_ONLY or READ_WRITE) on a subtree, as the tenant's OWNER."""
    def give(user_id: str, path_part_id: str, capability: str) -> None:
        response = call_api("POST", "/v1/user-permissions", {
            "tenant_id": tenant.tenant_id, "user_id": user_id, "path_part_id": path_part_id, "capability": capability,
        }, tenant.api_key)
        assert response.status == 201, response.body

    return give


@pytest.fixture
def create_definition(tenant: CreatedTenant, knowledge: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """POST a definition (201 expected) aimed at `runner_url`; overrides replace body fields."""
    def create(runner_url: str = PUBLIC_RUNNER_URL, api_key: str | None = None, **overrides: Any) -> dict[str, Any]:
        response = call_api("POST", "/v1/workflow-definitions", definition_body(knowledge, runner_url, **overrides),
                            api_key or tenant.api_key)
        assert response.status == 201, response.body
        return dict(response.body)

    return create


@pytest.fixture
def silent_run(aws_env: dict[str, str], tenant: CreatedTenant, runner_factory: Callable[..., Runner],
               create_definition: Callable[..., dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """A RUNNING run whose runner accepted the dispatch and never calls back.

    At teardown the run is ended with a signed callback (unless the test already ended it),
    so its execution finishes instead of waiting for the deadline.
    """
    runner = runner_factory(delay=3600)
    definition = create_definition(runner.url)
    invoked = call_api("POST", f"/v1/workflow-definitions/{definition['id']}/invoke", {}, tenant.api_key)
    assert invoked.status == 202, invoked.body
    run = dict(invoked.body)
    wait_for(lambda: get_run(run["id"], tenant.api_key)["status"] == "RUNNING", timeout=10)
    yield run
    current = call_api("GET", f"/v1/workflow-runs/{run['id']}", api_key=tenant.api_key)
    if current.status == 200 and current.body["status"] in ("PENDING", "RUNNING"):
        callback(run["id"], {"status": "COMPLETED"})
