"""Callback security: a signed message is bound to one run, secrets rotate at once, deadlines hold.

Each case is one a careless implementation gets wrong: it verifies the signature but not
which run it was made for, verifies against the secret the run was invoked under, or lets
a callback that arrives after the deadline win because the timer has not fired yet.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from ksflow import aws, clock
from ksflow.identity.models import CreatedTenant
from ksflow.workflows import run_store, secrets
from tests.conftest import RUNNER_SECRET, Runner, call_api, definition_body, wait_for
from tests.unit.conftest import callback, execution_status, get_run, signed

NEW_SECRET = "whsec_" + base64.b64encode(b"the-rotated-webhook-secret").decode()


@pytest.fixture
def silent_definition(tenant: CreatedTenant, runner_factory: Callable[..., Runner],
                      knowledge: dict[str, str]) -> dict[str, Any]:
    """A definition whose runner accepts dispatches and never calls back."""
    runner = runner_factory(delay=3600)
    response = call_api("POST", "/v1/workflow-definitions", definition_body(knowledge, runner.url), tenant.api_key)
    assert response.status == 201, response.body
    return {**response.body, "runner_url": runner.url}


@pytest.fixture
def running(tenant: CreatedTenant, silent_definition: dict[str, Any]) -> Any:
    """Start a run of the silent definition and wait until the runner has accepted it."""
    started: list[str] = []

    def start() -> dict[str, Any]:
        invoked = call_api("POST", f"/v1/workflow-definitions/{silent_definition['id']}/invoke", {}, tenant.api_key)
        assert invoked.status == 202, invoked.body
        wait_for(lambda: get_run(invoked.body["id"], tenant.api_key)["status"] == "RUNNING", timeout=10)
        started.append(invoked.body["id"])
        return dict(invoked.body)

    yield start
    for run_id in started:  # end what the test left open, so executions finish now
        current = call_api("GET", f"/v1/workflow-runs/{run_id}", api_key=tenant.api_key)
        if current.status == 200 and current.body["status"] in ("PENDING", "RUNNING"):
            callback(run_id, {"status": "COMPLETED"}, secret=None, api_key=tenant.api_key)


def _post(run_id: str, headers: dict[str, str], body: str) -> Any:
    return call_api("POST", f"/v1/workflow-runs/{run_id}/callback", headers=headers, raw_body=body)


def _rotate(tenant: CreatedTenant, definition: dict[str, Any], knowledge: dict[str, str], secret: str) -> None:
    """PUT the definition unchanged but for its webhook secret."""
    body = definition_body(knowledge, definition["runner_url"])
    body["runner_config"]["webhook_secret"] = secret
    response = call_api("PUT", f"/v1/workflow-definitions/{definition['id']}", body, tenant.api_key)
    assert response.status == 200, response.body


def test_a_signed_callback_replayed_to_another_run_is_401_and_changes_nothing(
        aws_env: dict[str, str], tenant: CreatedTenant, running: Callable[[], dict[str, Any]]) -> None:
    run_a, run_b = running(), running()
    body = json.dumps({"status": "COMPLETED"})
    headers = signed(body)
    assert _post(run_a["id"], headers, body).status == 200
    replayed = _post(run_b["id"], headers, body)
    assert replayed.status == 401, replayed.body
    assert "another workflow run" in replayed.body["detail"]
    assert get_run(run_b["id"], tenant.api_key)["status"] == "RUNNING"
    # The same message to its own run keeps the repeat rules.
    assert (_post(run_a["id"], headers, body).body) == {"status": "COMPLETED"}
    # Run B still ends with a message of its own.
    assert callback(run_b["id"], {"status": "COMPLETED"}).status == 200
    assert execution_status(aws_env, run_b["workflow_id"]) == "SUCCEEDED"


def test_a_replay_to_a_run_that_already_ended_is_401_not_a_repeat(
        tenant: CreatedTenant, running: Callable[[], dict[str, Any]]) -> None:
    """Run B already ended FAILED by its own runner; A's COMPLETED message must not look like B's repeat."""
    run_a, run_b = running(), running()
    body = json.dumps({"status": "FAILED", "error": "disk full"})
    headers = signed(body)
    assert callback(run_b["id"], {"status": "FAILED", "error": "disk full"}).status == 200
    assert _post(run_a["id"], headers, body).status == 200
    replayed = _post(run_b["id"], headers, body)
    assert replayed.status == 401, replayed.body


def test_the_same_message_id_cannot_serve_two_runs_even_with_fresh_signatures(
        tenant: CreatedTenant, running: Callable[[], dict[str, Any]]) -> None:
    """The runner picks webhook-id; reusing one for another run within the window is refused."""
    run_a, run_b = running(), running()
    body = json.dumps({"status": "COMPLETED"})
    assert _post(run_a["id"], signed(body, message_id="callback-1"), body).status == 200
    assert _post(run_b["id"], signed(body, message_id="callback-1"), body).status == 401
    assert _post(run_b["id"], signed(body, message_id="callback-2"), body).status == 200


def test_a_message_id_of_any_length_and_alphabet_is_accepted(
        tenant: CreatedTenant, running: Callable[[], dict[str, Any]]) -> None:
    run = running()
    body = json.dumps({"status": "COMPLETED"})
    response = _post(run["id"], signed(body, message_id="😀" * 2000), body)
    assert (response.status, response.body) == (200, {"status": "COMPLETED"})


def test_a_rotated_secret_applies_to_runs_in_flight(
        aws_env: dict[str, str], tenant: CreatedTenant, knowledge: dict[str, str],
        silent_definition: dict[str, Any], running: Callable[[], dict[str, Any]]) -> None:
    run = running()
    _rotate(tenant, silent_definition, knowledge, NEW_SECRET)
    old = callback(run["id"], {"status": "COMPLETED"}, secret=RUNNER_SECRET)
    assert old.status == 401, old.body
    assert get_run(run["id"], tenant.api_key)["status"] == "RUNNING"
    new = callback(run["id"], {"status": "COMPLETED"}, secret=NEW_SECRET)
    assert (new.status, new.body) == (200, {"status": "COMPLETED"})
    assert execution_status(aws_env, run["workflow_id"]) == "SUCCEEDED"


def test_a_secret_rotated_between_verification_and_write_does_not_win(
        tenant: CreatedTenant, silent_definition: dict[str, Any],
        running: Callable[[], dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Checking the secret and then writing is not enough: the write itself is conditional on it."""
    run = running()
    end_attempt = run_store.end_attempt
    rotated: list[bool] = []

    def rotate_first(*args: Any, **kwargs: Any) -> Any:
        if not rotated:  # a PUT landing now; the API serves one request at a time, so write it directly
            rotated.append(True)
            aws.table(os.environ["TABLE_NAME"]).update_item(
                Key={"pk": f"TENANT#{tenant.tenant_id}", "sk": f"WORKFLOWDEF#{silent_definition['id']}"},
                UpdateExpression="SET secret_ciphertext = :secret",
                ExpressionAttributeValues={
                    ":secret": secrets.encrypt(NEW_SECRET, tenant.tenant_id, silent_definition["id"])})
        return end_attempt(*args, **kwargs)

    monkeypatch.setattr(run_store, "end_attempt", rotate_first)
    response = callback(run["id"], {"status": "FAILED", "error": "signed with the old secret"})
    assert response.status == 401, response.body
    assert rotated and get_run(run["id"], tenant.api_key)["status"] == "RUNNING"


def test_several_signatures_in_one_header_pass_when_one_is_valid(
        tenant: CreatedTenant, knowledge: dict[str, str], silent_definition: dict[str, Any],
        running: Callable[[], dict[str, Any]]) -> None:
    run = running()
    _rotate(tenant, silent_definition, knowledge, NEW_SECRET)
    body = json.dumps({"status": "COMPLETED"})
    old, new = signed(body, RUNNER_SECRET), signed(body, NEW_SECRET, message_id="msg_rolling")
    old_with_new_id = signed(body, RUNNER_SECRET, message_id="msg_rolling")
    only_wrong = {**new, "webhook-signature": f"{old_with_new_id['webhook-signature']} v1,AAAA v1,not base64 x"}
    assert _post(run["id"], only_wrong, body).status == 401
    assert _post(run["id"], {**old, "webhook-signature": old["webhook-signature"]}, body).status == 401
    # Malformed and stale signatures next to the valid one do not spoil it, in any position.
    rolling = {**new, "webhook-signature": (f"v1,AAAA  {old_with_new_id['webhook-signature']} garbage "
                                            f"{new['webhook-signature']} v2,xyz")}
    response = _post(run["id"], rolling, body)
    assert (response.status, response.body) == (200, {"status": "COMPLETED"})


def test_a_callback_after_the_deadline_loses_before_the_timer_fires(
        aws_env: dict[str, str], tenant: CreatedTenant, running: Callable[[], dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    run = running()
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(seconds=61))
    late = callback(run["id"], {"status": "COMPLETED"})
    assert late.status == 409, late.body
    assert "time limit" in late.body["detail"]
    monkeypatch.setattr(clock, "now", real_now)
    ended = get_run(run["id"], tenant.api_key)
    assert ended["status"] == "FAILED"
    assert "time limit" in ended["error"] and ended["completed_at"] is not None
    # The repeat still conflicts, and the execution is not left waiting for its timer.
    assert callback(run["id"], {"status": "COMPLETED"}).status == 409
    assert execution_status(aws_env, run["workflow_id"]) in ("SUCCEEDED", "ABORTED")


def test_an_api_key_callback_after_the_deadline_loses_too(
        tenant: CreatedTenant, running: Callable[[], dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    run = running()
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(seconds=61))
    late = callback(run["id"], {"status": "FAILED", "error": "x"}, secret=None, api_key=tenant.api_key)
    assert late.status == 409, late.body
    monkeypatch.setattr(clock, "now", real_now)
    assert "time limit" in get_run(run["id"], tenant.api_key)["error"]
