"""The runner callback, POST /v1/workflow-runs/{run_id}/callback, through the API Lambda.

Runs come from `silent_run`: the runner accepted the dispatch and never calls back, so
each test decides how the run ends (and the fixture ends it otherwise).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ksapi.models import WorkflowRunResponse

from ksflow.identity import store as identity
from ksflow.identity.models import CreatedTenant, Role
from tests.conftest import RUNNER_SECRET, Runner, call_api, definition_body, wait_for
from tests.unit.conftest import callback, execution_status, get_run, signed

OTHER_SECRET = "whsec_" + base64.b64encode(b"not-the-definition-secret").decode()


def test_no_credentials_is_401(tenant: CreatedTenant, silent_run: dict[str, Any]) -> None:
    response = callback(silent_run["id"], {"status": "COMPLETED"}, secret=None)
    assert response.status == 401, response.body
    assert isinstance(response.body["detail"], str)
    assert get_run(silent_run["id"], tenant.api_key)["status"] == "RUNNING"


def test_bad_signatures_are_401_and_change_nothing(tenant: CreatedTenant, silent_run: dict[str, Any]) -> None:
    run_id = silent_run["id"]
    body = json.dumps({"status": "FAILED", "error": "forged"})
    good = signed(body)
    attempts: list[tuple[str, dict[str, str], str]] = [
        ("wrong secret", signed(body, OTHER_SECRET), body),
        ("plain secret with the same characters", signed(body, RUNNER_SECRET.removeprefix("whsec_")), body),
        ("stale timestamp", signed(body, at=datetime.now(UTC) - timedelta(minutes=6)), body),
        ("future timestamp", signed(body, at=datetime.now(UTC) + timedelta(minutes=6)), body),
        ("tampered body", good, json.dumps({"status": "COMPLETED"})),
        ("garbage signature", {**good, "webhook-signature": "v1,AAAA"}, body),
        ("signature without id", {k: v for k, v in good.items() if k != "webhook-id"}, body),
        ("signature without timestamp", {k: v for k, v in good.items() if k != "webhook-timestamp"}, body),
        ("id and timestamp only", {k: v for k, v in good.items() if k != "webhook-signature"}, body),
    ]
    for what, headers, sent in attempts:
        response = call_api("POST", f"/v1/workflow-runs/{run_id}/callback", headers=headers, raw_body=sent)
        assert response.status == 401, (what, response.body)
        assert isinstance(response.body["detail"], str)
    assert get_run(run_id, tenant.api_key)["status"] == "RUNNING"


def test_invalid_api_keys_are_401(tenant: CreatedTenant, silent_run: dict[str, Any]) -> None:
    for key in ("sk-not-a-key", "nonsense"):
        response = callback(silent_run["id"], {"status": "COMPLETED"}, secret=None, api_key=key)
        assert response.status == 401, response.body
    assert get_run(silent_run["id"], tenant.api_key)["status"] == "RUNNING"


def test_signed_completed_completes_the_run(aws_env: dict[str, str], tenant: CreatedTenant,
                                            silent_run: dict[str, Any]) -> None:
    response = callback(silent_run["id"], {"status": "COMPLETED"})
    assert (response.status, response.body) == (200, {"status": "COMPLETED"})
    run = get_run(silent_run["id"], tenant.api_key)
    assert run["status"] == "COMPLETED"
    assert run["completed_at"] is not None and run["error"] is None
    assert run["completed_at"] >= run["started_at"]
    assert WorkflowRunResponse.from_dict(run) is not None
    assert execution_status(aws_env, silent_run["workflow_id"]) == "SUCCEEDED"


def test_signed_failed_fails_the_run_with_the_runners_error(aws_env: dict[str, str], tenant: CreatedTenant,
                                                            silent_run: dict[str, Any]) -> None:
    error = "Timeout reading source document ✗ "
    error += "x" * (8192 - len(error))  # the longest error allowed, in characters
    response = callback(silent_run["id"], {"status": "FAILED", "error": error})
    assert (response.status, response.body) == (200, {"status": "FAILED"})
    run = get_run(silent_run["id"], tenant.api_key)
    assert (run["status"], run["error"]) == ("FAILED", error)
    assert run["completed_at"] is not None
    assert execution_status(aws_env, silent_run["workflow_id"]) == "SUCCEEDED"


def test_failed_without_an_error_still_records_one(tenant: CreatedTenant, silent_run: dict[str, Any]) -> None:
    assert callback(silent_run["id"], {"status": "FAILED"}).status == 200
    run = get_run(silent_run["id"], tenant.api_key)
    assert run["status"] == "FAILED"
    assert isinstance(run["error"], str) and run["error"]


def test_a_repeated_callback_changes_nothing_and_a_contrary_one_conflicts(
        tenant: CreatedTenant, silent_run: dict[str, Any]) -> None:
    run_id = silent_run["id"]
    body = json.dumps({"status": "COMPLETED"})
    headers = signed(body)
    first = call_api("POST", f"/v1/workflow-runs/{run_id}/callback", headers=headers, raw_body=body)
    assert first.status == 200, first.body
    after_first = get_run(run_id, tenant.api_key)
    # The exact same delivery again (a runner retry), then a freshly signed repeat.
    for again in (call_api("POST", f"/v1/workflow-runs/{run_id}/callback", headers=headers, raw_body=body),
                  callback(run_id, {"status": "COMPLETED"})):
        assert (again.status, again.body) == (200, {"status": "COMPLETED"})
    assert get_run(run_id, tenant.api_key) == after_first
    contrary = callback(run_id, {"status": "FAILED", "error": "too late"})
    assert contrary.status == 409, contrary.body
    assert "COMPLETED" in contrary.body["detail"]
    final = get_run(run_id, tenant.api_key)
    assert final == after_first
    assert final["error"] is None


def test_a_failed_run_does_not_become_completed(tenant: CreatedTenant, silent_run: dict[str, Any]) -> None:
    assert callback(silent_run["id"], {"status": "FAILED", "error": "boom"}).status == 200
    late = callback(silent_run["id"], {"status": "COMPLETED"})
    assert late.status == 409, late.body
    assert "FAILED" in late.body["detail"]
    run = get_run(silent_run["id"], tenant.api_key)
    assert (run["status"], run["error"]) == ("FAILED", "boom")


def test_callback_after_the_run_failed_elsewhere_conflicts(aws_env: dict[str, str], tenant: CreatedTenant,
                                                           runner_factory: Callable[..., Runner],
                                                           create_definition: Callable[..., dict[str, Any]]) -> None:
    """A runner that cannot verify the dispatch answers 401: the run fails, and a late callback gets 409."""
    runner = runner_factory(secret=OTHER_SECRET, delay=3600)
    definition = create_definition(runner.url)
    run = call_api("POST", f"/v1/workflow-definitions/{definition['id']}/invoke", {}, tenant.api_key).body
    failed = dict(wait_for(lambda: (r := get_run(run["id"], tenant.api_key))["status"] == "FAILED" and r))
    assert "401" in failed["error"]
    assert failed["completed_at"] is not None
    late = callback(run["id"], {"status": "COMPLETED"})
    assert late.status == 409, late.body
    assert "FAILED" in late.body["detail"]
    assert get_run(run["id"], tenant.api_key) == failed


def test_unknown_run_is_404(tenant: CreatedTenant) -> None:
    unknown = str(uuid.uuid4())
    response = callback(unknown, {"status": "COMPLETED"})
    assert response.status == 404, response.body
    assert isinstance(response.body["detail"], str)
    assert callback(unknown, {"status": "COMPLETED"}, secret=None, api_key=tenant.api_key).status == 404
    assert callback(unknown, {"status": "COMPLETED"}, secret=None).status == 401


def test_malformed_run_id_is_422(tenant: CreatedTenant) -> None:
    response = callback("not-a-uuid", {"status": "COMPLETED"})
    assert response.status == 422, response.body
    assert response.body["detail"][0]["loc"] == ["path", "run_id"]


def test_bad_bodies_are_422_with_a_detail_list(tenant: CreatedTenant, silent_run: dict[str, Any]) -> None:
    bodies = [
        json.dumps({"status": "DONE"}),
        json.dumps({"status": "RUNNING"}),
        json.dumps({"status": "completed"}),
        json.dumps({"status": "FAILED", "error": "e" * 8193}),
        json.dumps({"error": "no status"}),
        json.dumps({"status": "COMPLETED", "extra": 1}),
        json.dumps(["COMPLETED"]),
        "not json",
        "",
    ]
    for body in bodies:
        response = callback(silent_run["id"], raw_body=body)
        assert response.status == 422, (body[:40], response.body)
        detail = response.body["detail"]
        assert isinstance(detail, list) and detail, detail
        assert all({"loc", "msg", "type"} <= set(entry) for entry in detail), detail
    oversized = callback(silent_run["id"], raw_body=json.dumps({"status": "FAILED", "error": "e" * 8193}))
    assert any(entry["loc"][-1] == "error" for entry in oversized.body["detail"]), oversized.body
    assert get_run(silent_run["id"], tenant.api_key)["status"] == "RUNNING"


def test_bad_body_with_a_bad_signature_is_401_not_422(silent_run: dict[str, Any]) -> None:
    """The signature is checked before the body is looked at."""
    assert callback(silent_run["id"], raw_body="not json", secret=OTHER_SECRET).status == 401


def test_the_owners_api_key_is_accepted(aws_env: dict[str, str], tenant: CreatedTenant,
                                        silent_run: dict[str, Any]) -> None:
    response = callback(silent_run["id"], {"status": "COMPLETED"}, secret=None, api_key=tenant.api_key)
    assert (response.status, response.body) == (200, {"status": "COMPLETED"})
    assert get_run(silent_run["id"], tenant.api_key)["status"] == "COMPLETED"
    assert execution_status(aws_env, silent_run["workflow_id"]) == "SUCCEEDED"


def test_an_admins_api_key_is_accepted(tenant: CreatedTenant, silent_run: dict[str, Any]) -> None:
    admin = identity.create_user(tenant.tenant_id, "admin@acme.test", Role.ADMIN)
    response = callback(silent_run["id"], {"status": "FAILED", "error": "stopped by admin"}, secret=None,
                        api_key=admin.api_key)
    assert (response.status, response.body) == (200, {"status": "FAILED"})


def test_keys_that_cannot_see_the_run_get_404(tenant: CreatedTenant, other_tenant: CreatedTenant,
                                              silent_run: dict[str, Any]) -> None:
    member = identity.create_user(tenant.tenant_id, "member@acme.test", Role.USER)
    for key in (other_tenant.api_key, member.api_key):
        response = callback(silent_run["id"], {"status": "FAILED", "error": "hijack"}, secret=None, api_key=key)
        assert response.status == 404, response.body
    assert get_run(silent_run["id"], tenant.api_key)["status"] == "RUNNING"


def test_bearer_and_signature_both_present(tenant: CreatedTenant, other_tenant: CreatedTenant,
                                           silent_run: dict[str, Any]) -> None:
    """A valid signature is enough; an invalid one is not rescued by a key that cannot see the run."""
    forged = callback(silent_run["id"], {"status": "FAILED"}, secret=OTHER_SECRET, api_key=other_tenant.api_key)
    assert forged.status in (401, 404), forged.body
    assert get_run(silent_run["id"], tenant.api_key)["status"] == "RUNNING"
    ok = callback(silent_run["id"], {"status": "COMPLETED"}, api_key=other_tenant.api_key)
    assert ok.status == 200, ok.body


def _running_run_signed_with(secret: str, tenant: CreatedTenant, runner_factory: Callable[..., Runner],
                             knowledge: dict[str, str]) -> dict[str, Any]:
    """A RUNNING run of a definition whose webhook secret is `secret`; its runner never calls back."""
    runner = runner_factory(secret=secret, delay=3600)
    body = definition_body(knowledge, runner.url)
    body["runner_config"]["webhook_secret"] = secret
    definition = call_api("POST", "/v1/workflow-definitions", body, tenant.api_key).body
    run = dict(call_api("POST", f"/v1/workflow-definitions/{definition['id']}/invoke", {}, tenant.api_key).body)
    wait_for(lambda: get_run(run["id"], tenant.api_key)["status"] == "RUNNING", timeout=10)
    return run


def test_a_plain_secret_signs_with_its_utf8_bytes(aws_env: dict[str, str], tenant: CreatedTenant,
                                                  runner_factory: Callable[..., Runner],
                                                  knowledge: dict[str, str]) -> None:
    secret = "plain runner secret"
    # The example runner verifies the dispatch with `standardwebhooks` keyed by the UTF-8 bytes.
    run = _running_run_signed_with(secret, tenant, runner_factory, knowledge)
    assert callback(run["id"], {"status": "COMPLETED"}, secret=RUNNER_SECRET).status == 401
    assert callback(run["id"], {"status": "COMPLETED"}, secret=secret).status == 200
    assert execution_status(aws_env, run["workflow_id"]) == "SUCCEEDED"


def test_the_secret_never_reaches_a_log_line(aws_env: dict[str, str], tenant: CreatedTenant,
                                             runner_factory: Callable[..., Runner], knowledge: dict[str, str],
                                             log_lines: list[str]) -> None:
    """Through a whole run: create, dispatch (which signs), a forged callback, a signed one."""
    secret = "whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode()
    run = _running_run_signed_with(secret, tenant, runner_factory, knowledge)
    assert callback(run["id"], {"status": "COMPLETED"}, secret=OTHER_SECRET).status == 401
    assert callback(run["id"], {"status": "COMPLETED"}, secret=secret).status == 200
    assert execution_status(aws_env, run["workflow_id"]) == "SUCCEEDED"
    logged = "\n".join(log_lines)
    assert run["id"] in logged  # the run's handling was logged
    for form in (secret, secret.removeprefix("whsec_")):
        assert form not in logged
