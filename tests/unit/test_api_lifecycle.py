"""Definitions and runs over their life: list, replace, delete, cancel, status, idempotency under races."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from ksapi.models import (
    PaginatedResponseWorkflowDefinitionResponse,
    PaginatedResponseWorkflowRunResponse,
    TemporalWorkflowStatusResponse,
    WorkflowCancelResponse,
)

from ksflow.identity import store as identity
from ksflow.identity.models import CreatedTenant, CreatedUser
from ksflow.workflows import runs
from tests.conftest import Runner, call_api, definition_body, wait_for
from tests.unit.conftest import PUBLIC_RUNNER_URL, callback, execution_status, get_run


def _invoke(tenant: CreatedTenant, definition_id: str, key: str | None = None) -> dict[str, Any]:
    response = call_api("POST", f"/v1/workflow-definitions/{definition_id}/invoke",
                        {"idempotency_key": key} if key else {}, tenant.api_key)
    assert response.status == 202, response.body
    return dict(response.body)


@pytest.fixture
def silent_definition(runner_factory: Callable[..., Runner],
                      create_definition: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return create_definition(runner_factory(delay=3600).url)


def _end(run_ids: list[str]) -> None:
    for run_id in run_ids:
        callback(run_id, {"status": "COMPLETED"})


def test_definitions_list_newest_first_with_bounds(tenant: CreatedTenant, create_definition: Callable[..., Any],
                                                   member: CreatedUser) -> None:
    created = [create_definition(name=f"def-{i}")["id"] for i in range(3)]
    page = call_api("GET", "/v1/workflow-definitions?limit=2&offset=0", api_key=tenant.api_key)
    assert page.status == 200
    parsed = PaginatedResponseWorkflowDefinitionResponse.from_dict(page.body)
    assert parsed.total == 3 and [str(d.id) for d in parsed.items] == created[::-1][:2]
    rest = call_api("GET", "/v1/workflow-definitions?limit=2&offset=2", api_key=tenant.api_key).body
    assert [d["id"] for d in rest["items"]] == [created[0]]
    assert call_api("GET", "/v1/workflow-definitions", api_key=member.api_key).body["total"] == 0
    for query in ("limit=0", "limit=101", "offset=-1", "limit=abc"):
        response = call_api("GET", f"/v1/workflow-definitions?{query}", api_key=tenant.api_key)
        assert response.status == 422 and response.body["detail"][0]["loc"][0] == "query", query


def test_other_tenant_lists_nothing(tenant: CreatedTenant, other_tenant: CreatedTenant,
                                    create_definition: Callable[..., Any]) -> None:
    definition = create_definition()
    assert call_api("GET", "/v1/workflow-definitions", api_key=other_tenant.api_key).body["total"] == 0
    for method in ("PUT", "DELETE"):
        response = call_api(method, f"/v1/workflow-definitions/{definition['id']}",
                            {"name": "x"} if method == "PUT" else None, other_tenant.api_key)
        assert response.status in (404, 422)
    assert call_api("GET", f"/v1/workflow-definitions/{definition['id']}/runs",
                    api_key=other_tenant.api_key).status == 404


def test_put_replaces_every_field(tenant: CreatedTenant, knowledge: dict[str, str],
                                  create_definition: Callable[..., Any]) -> None:
    definition = create_definition(description="first")
    body = definition_body(knowledge, PUBLIC_RUNNER_URL, name="renamed", is_active=False)
    body.pop("template_path_part_id")
    response = call_api("PUT", f"/v1/workflow-definitions/{definition['id']}", body, tenant.api_key)
    assert response.status == 200, response.body
    replaced = call_api("GET", f"/v1/workflow-definitions/{definition['id']}", api_key=tenant.api_key).body
    assert (replaced["name"], replaced["description"], replaced["is_active"], replaced["template_path_part_id"]) == (
        "renamed", None, False, None)
    assert replaced["created_at"] == definition["created_at"] and replaced["updated_at"] > definition["updated_at"]
    assert _invoke_status(tenant, definition["id"]) == 409  # inactive now
    bad = call_api("PUT", f"/v1/workflow-definitions/{definition['id']}", {**body, "max_run_duration_seconds": 5},
                   tenant.api_key)
    assert bad.status == 422 and bad.body["detail"][0]["loc"] == ["body", "max_run_duration_seconds"]


def _invoke_status(tenant: CreatedTenant, definition_id: str) -> int:
    return call_api("POST", f"/v1/workflow-definitions/{definition_id}/invoke", {}, tenant.api_key).status


def test_runs_list_newest_first_with_exact_total(aws_env: dict[str, str], tenant: CreatedTenant,
                                                 silent_definition: dict[str, Any]) -> None:
    runs = [_invoke(tenant, silent_definition["id"])["id"] for _ in range(3)]
    try:
        path = f"/v1/workflow-definitions/{silent_definition['id']}/runs"
        page = PaginatedResponseWorkflowRunResponse.from_dict(
            call_api("GET", f"{path}?limit=2", api_key=tenant.api_key).body)
        assert page.total == 3 and page.limit == 2 and [str(r.id) for r in page.items] == runs[::-1][:2]
        last = call_api("GET", f"{path}?limit=2&offset=2", api_key=tenant.api_key).body
        assert [r["id"] for r in last["items"]] == [runs[0]] and last["total"] == 3
        assert call_api("GET", f"{path}?limit=101", api_key=tenant.api_key).status == 422
    finally:
        _end(runs)


def test_delete_definition_refused_while_a_run_is_open(aws_env: dict[str, str], tenant: CreatedTenant,
                                                       silent_definition: dict[str, Any]) -> None:
    run = _invoke(tenant, silent_definition["id"])
    path = f"/v1/workflow-definitions/{silent_definition['id']}"
    assert call_api("DELETE", path, api_key=tenant.api_key).status == 409
    _end([run["id"]])
    assert call_api("DELETE", path, api_key=tenant.api_key).status == 204
    assert call_api("GET", path, api_key=tenant.api_key).status == 404
    assert call_api("GET", f"/v1/workflow-runs/{run['id']}", api_key=tenant.api_key).status == 404
    assert call_api("DELETE", path, api_key=tenant.api_key).status == 404


def test_deleting_a_run_frees_its_idempotency_key(aws_env: dict[str, str], tenant: CreatedTenant,
                                                  silent_definition: dict[str, Any]) -> None:
    first = _invoke(tenant, silent_definition["id"], key="nightly")
    assert _invoke(tenant, silent_definition["id"], key="nightly")["id"] == first["id"]
    _end([first["id"]])
    assert call_api("DELETE", f"/v1/workflow-runs/{first['id']}", api_key=tenant.api_key).status == 204
    assert call_api("GET", f"/v1/workflow-runs/{first['id']}", api_key=tenant.api_key).status == 404
    second = _invoke(tenant, silent_definition["id"], key="nightly")
    assert second["id"] != first["id"]
    runs = call_api("GET", f"/v1/workflow-definitions/{silent_definition['id']}/runs", api_key=tenant.api_key).body
    assert runs["total"] == 1 and [r["id"] for r in runs["items"]] == [second["id"]]
    _end([second["id"]])


def test_concurrent_invokes_with_one_key_make_one_run(aws_env: dict[str, str], tenant: CreatedTenant,
                                                      silent_definition: dict[str, Any]) -> None:
    """Each thread plays one Lambda container; only DynamoDB's conditional writes keep them apart."""
    principal = identity.authenticate(tenant.api_key)
    assert principal is not None
    run_ids: list[str] = []
    barrier = threading.Barrier(8)

    def invoke() -> None:
        barrier.wait()
        run_ids.append(runs.invoke(principal, silent_definition["id"], "race").id)

    threads = [threading.Thread(target=invoke) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(run_ids) == 8 and len(set(run_ids)) == 1
    listed = call_api("GET", f"/v1/workflow-definitions/{silent_definition['id']}/runs", api_key=tenant.api_key).body
    assert listed["total"] == 1 and [r["id"] for r in listed["items"]] == run_ids[:1]
    schedules = boto3.client("scheduler").list_schedules(GroupName=aws_env["SCHEDULER_GROUP_NAME"])["Schedules"]
    assert [s["Name"] for s in schedules] == [f"run-expiry-{run_ids[0]}"]
    _end(run_ids[:1])


def test_cancel_fails_the_run_and_ends_its_execution(aws_env: dict[str, str], tenant: CreatedTenant,
                                                     silent_run: dict[str, Any]) -> None:
    path = f"/v1/workflows/{silent_run['workflow_id']}"
    status = call_api("GET", path, api_key=tenant.api_key)
    assert status.status == 200
    assert TemporalWorkflowStatusResponse.from_dict(status.body).temporal_status == "RUNNING"
    cancelled = call_api("DELETE", path, api_key=tenant.api_key)
    assert cancelled.status == 200
    assert WorkflowCancelResponse.from_dict(cancelled.body).workflow_id == silent_run["workflow_id"]
    run = get_run(silent_run["id"], tenant.api_key)
    assert run["status"] == "FAILED" and "cancelled" in run["error"] and run["completed_at"]
    assert call_api("DELETE", path, api_key=tenant.api_key).status == 409
    after = call_api("GET", path, api_key=tenant.api_key).body
    assert after["execution_status"] == "CANCELED" and after["close_time"] is not None
    assert callback(silent_run["id"], {"status": "COMPLETED"}).status == 409
    assert execution_status(aws_env, silent_run["workflow_id"]) == "SUCCEEDED"


def test_workflow_ids_of_others_are_not_found(tenant: CreatedTenant, other_tenant: CreatedTenant,
                                              silent_run: dict[str, Any]) -> None:
    path = f"/v1/workflows/{silent_run['workflow_id']}"
    assert call_api("GET", path, api_key=other_tenant.api_key).status == 404
    assert call_api("DELETE", path, api_key=other_tenant.api_key).status == 404
    assert call_api("GET", "/v1/workflows/not-a-workflow", api_key=tenant.api_key).status == 404
    assert get_run(silent_run["id"], tenant.api_key)["status"] == "RUNNING"


def test_users_me(tenant: CreatedTenant, member: CreatedUser) -> None:
    from ksapi.models import UserResponse

    me = UserResponse.from_dict(call_api("GET", "/v1/users/me", api_key=member.api_key).body)
    assert str(me.id) == member.user_id and me.current_tenant_role == "USER"
    assert str(me.current_tenant_id) == tenant.tenant_id
    assert call_api("GET", "/v1/users/me").status == 401


def test_permissions_grant_revoke_and_visibility(tenant: CreatedTenant, member: CreatedUser,
                                                 knowledge: dict[str, str], other_tenant: CreatedTenant) -> None:
    from ksapi.models import PaginatedResponsePermissionResponse, PermissionResponse

    folder = f"/v1/path-parts/{knowledge['source']}"
    assert call_api("GET", folder, api_key=member.api_key).status == 404
    body = {"tenant_id": tenant.tenant_id, "user_id": member.user_id, "path_part_id": knowledge["source"],
            "capability": "READ_ONLY"}
    assert call_api("POST", "/v1/user-permissions", body, member.api_key).status == 403
    assert call_api("POST", "/v1/user-permissions", {**body, "tenant_id": other_tenant.tenant_id},
                    tenant.api_key).status == 404
    created = call_api("POST", "/v1/user-permissions", body, tenant.api_key)
    assert created.status == 201, created.body
    permission = PermissionResponse.from_dict(created.body)
    assert permission.materialized_path == "/sources" and permission.capability == "READ_ONLY"
    assert call_api("POST", "/v1/user-permissions", body, tenant.api_key).status == 409

    readable = call_api("GET", folder, api_key=member.api_key).body
    assert readable["can_read"] is True and readable["can_write"] is False
    listed = call_api("GET", f"/v1/user-permissions?tenant_id={tenant.tenant_id}&user_id={member.user_id}",
                      api_key=member.api_key)
    assert PaginatedResponsePermissionResponse.from_dict(listed.body).total == 1

    patched = call_api("PATCH", f"/v1/user-permissions/{permission.id}", {"capability": "READ_WRITE"}, tenant.api_key)
    assert patched.status == 200 and patched.body["capability"] == "READ_WRITE"
    assert call_api("GET", folder, api_key=member.api_key).body["can_write"] is True

    assert call_api("DELETE", f"/v1/user-permissions/{permission.id}", api_key=other_tenant.api_key).status == 404
    assert call_api("DELETE", f"/v1/user-permissions/{permission.id}", api_key=tenant.api_key).status == 204
    assert call_api("GET", folder, api_key=member.api_key).status == 404
    assert call_api("DELETE", f"/v1/user-permissions/{permission.id}", api_key=tenant.api_key).status == 404
    wait_for(lambda: True)
