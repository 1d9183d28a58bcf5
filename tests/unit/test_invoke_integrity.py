"""Invoke under retries, crashes and races; references judged by the definition's creator.

- An idempotent retry is answered with its run even after the definition changed.
- A run whose execution did not start is never left PENDING with nothing to start it.
- Idempotency keys of any legal content fit the table's keys and leave no stray schedule.
- A definition delete racing with run writes never leaves a run behind.
- An ADMIN cannot make a USER's definition (and so its runs) show a path that USER cannot read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ksflow.errors import Conflict
from ksflow.identity import store as identity
from ksflow.identity.models import CreatedTenant, CreatedUser, Principal, Role
from ksflow.orchestration import executions
from ksflow.workflows import definitions, run_store
from tests.conftest import Runner, call_api, definition_body, wait_for, wait_for_executions
from tests.unit.conftest import callback, execution_count, get_run

EMOJI_KEY = "🔑" * 255


def invoke(definition_id: str, api_key: str, body: Any = None) -> Any:
    return call_api("POST", f"/v1/workflow-definitions/{definition_id}/invoke", body, api_key)


def schedules(env: dict[str, str]) -> list[str]:
    found = boto3.client("scheduler").list_schedules(GroupName=env["SCHEDULER_GROUP_NAME"])["Schedules"]
    return sorted(s["Name"] for s in found)


@pytest.fixture
def silent_definition(aws_env: dict[str, str], tenant: CreatedTenant, runner_factory: Callable[..., Runner],
                      knowledge: dict[str, str]) -> Iterator[dict[str, Any]]:
    """A definition whose runner accepts dispatches and never calls back; open runs are ended at teardown."""
    runner = runner_factory(delay=3600)
    created = call_api("POST", "/v1/workflow-definitions", definition_body(knowledge, runner.url), tenant.api_key)
    assert created.status == 201, created.body
    yield {**created.body, "runner_url": runner.url}
    listed = call_api("GET", f"/v1/workflow-definitions/{created.body['id']}/runs?limit=100", api_key=tenant.api_key)
    for run in listed.body.get("items", []) if listed.status == 200 else []:
        if run["status"] in ("PENDING", "RUNNING"):
            callback(run["id"], {"status": "COMPLETED"}, secret=None, api_key=tenant.api_key)
    wait_for_executions(aws_env["RUN_STATE_MACHINE_ARN"])


def _put(tenant: CreatedTenant, definition: dict[str, Any], knowledge: dict[str, str], **changes: Any) -> None:
    body = definition_body(knowledge, definition["runner_url"], **changes)
    if body.get("runner_config") is None:
        body.pop("runner_config")
    response = call_api("PUT", f"/v1/workflow-definitions/{definition['id']}", body, tenant.api_key)
    assert response.status == 200, response.body


@pytest.mark.parametrize("change", [{"is_active": False}, {"runner_config": None}])
def test_a_retry_with_the_same_key_returns_its_run_after_the_definition_changed(
        tenant: CreatedTenant, knowledge: dict[str, str], silent_definition: dict[str, Any],
        change: dict[str, Any]) -> None:
    first = invoke(silent_definition["id"], tenant.api_key, {"idempotency_key": "order-42"})
    assert first.status == 202, first.body
    _put(tenant, silent_definition, knowledge, **change)
    retry = invoke(silent_definition["id"], tenant.api_key, {"idempotency_key": "order-42"})
    assert (retry.status, retry.body["id"]) == (202, first.body["id"])
    fresh = invoke(silent_definition["id"], tenant.api_key, {"idempotency_key": "order-43"})
    assert fresh.status == 409, fresh.body


def test_a_failed_start_leaves_no_run_and_a_retry_starts_one(
        aws_env: dict[str, str], tenant: CreatedTenant, silent_definition: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    real_start = executions.start

    def unavailable(*_: Any, **__: Any) -> None:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "StartExecution")

    monkeypatch.setattr(executions, "start", unavailable)
    failed = invoke(silent_definition["id"], tenant.api_key, {"idempotency_key": "k"})
    assert failed.status == 503, failed.body
    assert isinstance(failed.body["detail"], str)
    listed = call_api("GET", f"/v1/workflow-definitions/{silent_definition['id']}/runs", api_key=tenant.api_key)
    assert listed.body["total"] == 0 and listed.body["items"] == []
    assert schedules(aws_env) == []
    monkeypatch.setattr(executions, "start", real_start)
    retried = invoke(silent_definition["id"], tenant.api_key, {"idempotency_key": "k"})
    assert retried.status == 202, retried.body
    wait_for(lambda: get_run(retried.body["id"], tenant.api_key)["status"] == "RUNNING", timeout=10)


def test_a_run_written_but_never_started_is_started_by_its_retry(
        aws_env: dict[str, str], tenant: CreatedTenant, silent_definition: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash between writing the run and starting it (here: start and the undo both fail)."""
    real_start = executions.start

    def crash(*_: Any, **__: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalFailure", "Message": "boom"}}, "Any")

    monkeypatch.setattr(executions, "start", crash)
    monkeypatch.setattr(run_store, "delete", crash)
    assert invoke(silent_definition["id"], tenant.api_key, {"idempotency_key": "k"}).status == 503
    assert execution_count(aws_env) == 0
    monkeypatch.setattr(executions, "start", real_start)
    replay = invoke(silent_definition["id"], tenant.api_key, {"idempotency_key": "k"})
    assert replay.status == 202, replay.body
    assert wait_for(lambda: get_run(replay.body["id"], tenant.api_key)["status"] == "RUNNING", timeout=10)
    again = invoke(silent_definition["id"], tenant.api_key, {"idempotency_key": "k"})
    assert again.body["id"] == replay.body["id"]
    assert execution_count(aws_env) == 1


def test_idempotency_keys_of_255_four_byte_characters(aws_env: dict[str, str], tenant: CreatedTenant,
                                                      silent_definition: dict[str, Any]) -> None:
    first = invoke(silent_definition["id"], tenant.api_key, {"idempotency_key": EMOJI_KEY})
    assert first.status == 202, first.body
    again = invoke(silent_definition["id"], tenant.api_key, {"idempotency_key": EMOJI_KEY})
    assert (again.status, again.body["id"]) == (202, first.body["id"])
    other = invoke(silent_definition["id"], tenant.api_key, {"idempotency_key": EMOJI_KEY[:-1] + "🗝"})
    assert other.status == 202 and other.body["id"] != first.body["id"]
    assert schedules(aws_env) == sorted(f"run-expiry-{r}" for r in (first.body["id"], other.body["id"]))
    wait_for(lambda: get_run(other.body["id"], tenant.api_key)["status"] == "RUNNING", timeout=10)
    too_long = invoke(silent_definition["id"], tenant.api_key, {"idempotency_key": EMOJI_KEY + "🔑"})
    assert too_long.status == 422, too_long.body
    assert callback(other.body["id"], {"status": "COMPLETED"}, secret=None, api_key=tenant.api_key).status == 200
    deleted = call_api("DELETE", f"/v1/workflow-runs/{other.body['id']}", api_key=tenant.api_key)
    assert deleted.status == 204
    assert invoke(silent_definition["id"], tenant.api_key, {"idempotency_key": EMOJI_KEY[:-1] + "🗝"}).status == 202


def test_a_run_written_while_the_definition_is_deleted_stops_the_delete(
        aws_env: dict[str, str], tenant: CreatedTenant, silent_definition: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The delete reads the runs; meanwhile one is removed and another created, so the count is unchanged."""
    finished = invoke(silent_definition["id"], tenant.api_key, {}).body
    wait_for(lambda: get_run(finished["id"], tenant.api_key)["status"] == "RUNNING", timeout=10)
    assert callback(finished["id"], {"status": "COMPLETED"}).status == 200
    list_runs = run_store.list_all_for_definition
    newcomer: list[str] = []

    def interleaved(definition_id: str) -> Any:
        seen = list_runs(definition_id)
        assert call_api("DELETE", f"/v1/workflow-runs/{finished['id']}", api_key=tenant.api_key).status == 204
        newcomer.append(invoke(silent_definition["id"], tenant.api_key, {}).body["id"])
        return seen

    monkeypatch.setattr(run_store, "list_all_for_definition", interleaved)
    owner = Principal(tenant_id=tenant.tenant_id, user_id=tenant.user_id, role=Role.OWNER)
    with pytest.raises(Conflict):
        definitions.delete(owner, silent_definition["id"])
    monkeypatch.setattr(run_store, "list_all_for_definition", list_runs)
    assert call_api("GET", f"/v1/workflow-definitions/{silent_definition['id']}", api_key=tenant.api_key).status == 200
    assert get_run(newcomer[0], tenant.api_key)["status"] in ("PENDING", "RUNNING")


@pytest.fixture
def admin(tenant: CreatedTenant) -> CreatedUser:
    return identity.create_user(tenant.tenant_id, "admin@acme.test", Role.ADMIN)


@pytest.fixture
def users_definition(tenant: CreatedTenant, member: CreatedUser, knowledge: dict[str, str],
                     grant: Callable[[str, str, str], None]) -> dict[str, Any]:
    """A USER's definition over the parts it was granted (everything the `knowledge` fixture made)."""
    for part in knowledge.values():
        grant(member.user_id, part, "READ_WRITE")
    created = call_api("POST", "/v1/workflow-definitions", definition_body(knowledge, "https://93.184.216.34/r"),
                       member.api_key)
    assert created.status == 201, created.body
    return dict(created.body)


def _secret_folder(tenant: CreatedTenant) -> str:
    response = call_api("POST", "/v1/folders", {"name": "HR-salaries", "parent_path_part_id": tenant.root_path_part_id},
                        tenant.api_key)
    assert response.status == 201, response.body
    return str(response.body["path_part_id"])


@pytest.mark.parametrize("field", ["source_path_part_ids", "output_path_part_ids"])
def test_an_admin_cannot_point_a_users_definition_at_what_the_user_cannot_read(
        tenant: CreatedTenant, admin: CreatedUser, member: CreatedUser, knowledge: dict[str, str],
        users_definition: dict[str, Any], field: str) -> None:
    secret = _secret_folder(tenant)
    body = definition_body(knowledge, "https://93.184.216.34/r", **{field: [secret]})
    response = call_api("PUT", f"/v1/workflow-definitions/{users_definition['id']}", body, admin.api_key)
    assert response.status == 422, response.body
    assert response.body["detail"][0]["loc"] == ["body", field, 0]
    assert "HR-salaries" not in str(call_api("GET", f"/v1/workflow-definitions/{users_definition['id']}",
                                             api_key=member.api_key).body)
    # The admin's own definitions may use it.
    own = call_api("POST", "/v1/workflow-definitions", body, admin.api_key)
    assert own.status == 201, own.body


def test_an_output_the_creator_may_only_read_is_refused(tenant: CreatedTenant, admin: CreatedUser,
                                                        member: CreatedUser, knowledge: dict[str, str],
                                                        grant: Callable[[str, str, str], None],
                                                        users_definition: dict[str, Any]) -> None:
    readable = _secret_folder(tenant)
    grant(member.user_id, readable, "READ_ONLY")
    body = definition_body(knowledge, "https://93.184.216.34/r", output_path_part_ids=[readable])
    response = call_api("PUT", f"/v1/workflow-definitions/{users_definition['id']}", body, admin.api_key)
    assert response.status == 422, response.body
    assert response.body["detail"][0]["loc"] == ["body", "output_path_part_ids", 0]


def test_an_admin_invoking_a_users_definition_is_refused_once_the_user_lost_access(
        aws_env: dict[str, str], tenant: CreatedTenant, admin: CreatedUser, member: CreatedUser,
        knowledge: dict[str, str], users_definition: dict[str, Any]) -> None:
    listed = call_api("GET", f"/v1/user-permissions?tenant_id={tenant.tenant_id}&user_id={member.user_id}",
                      api_key=tenant.api_key)
    source_grant = next(p for p in listed.body["items"] if p["path_part_id"] == knowledge["source"])
    assert call_api("DELETE", f"/v1/user-permissions/{source_grant['id']}", api_key=tenant.api_key).status == 204
    response = invoke(users_definition["id"], admin.api_key, {})
    assert response.status == 409, response.body
    assert knowledge["source"] in response.body["detail"] and "creator" in response.body["detail"]
    assert execution_count(aws_env) == 0
    runs = call_api("GET", f"/v1/workflow-definitions/{users_definition['id']}/runs", api_key=member.api_key)
    assert runs.body["total"] == 0
