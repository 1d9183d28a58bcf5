"""The whole workflow surface through the local stack with the `ksapi` SDK: lists, replace,
cancel, status, deletes, permissions, and idempotency under concurrent invokes."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import ksapi
import pytest
from ksapi.exceptions import ApiException

from tests.e2e.conftest import LocalStack
from tests.e2e.test_local_stack_sdk import WEBHOOK_SECRET, _await_end, _client, _definition, _knowledge

pytestmark = pytest.mark.e2e


def test_definitions_and_runs_over_their_life(local_stack: LocalStack, start_runner: Callable[..., str]) -> None:
    client = _client(local_stack, local_stack.credentials["api_key"])
    definitions, runs, workflows = (ksapi.WorkflowDefinitionsApi(client), ksapi.WorkflowRunsApi(client),
                                    ksapi.WorkflowsApi(client))
    parts = _knowledge(client, local_stack.credentials["root_path_part_id"])
    silent_runner = start_runner(WEBHOOK_SECRET, "--delay", "3600")
    definition = _definition(client, parts, silent_runner)
    listed = definitions.list_workflow_definitions(limit=100, offset=0)
    assert definition.id in [d.id for d in listed.items] and listed.total >= 1

    run = definitions.invoke_workflow(definition.id, ksapi.InvokeWorkflowRequest())
    deadline = time.monotonic() + 30
    while runs.get_workflow_run(run.id).status != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    status = workflows.get_temporal_workflow_status(f"run-{run.id}")
    assert status.temporal_status == "RUNNING"

    with pytest.raises(ApiException) as refused:
        definitions.delete_workflow_definition(definition.id)
    assert refused.value.status == 409

    cancelled = workflows.cancel_temporal_workflow(f"run-{run.id}")
    assert cancelled.workflow_id == f"run-{run.id}"
    ended = runs.get_workflow_run(run.id)
    assert ended.status == "FAILED" and "cancelled" in (ended.error or "")
    with pytest.raises(ApiException) as again:
        workflows.cancel_temporal_workflow(f"run-{run.id}")
    assert again.value.status == 409

    replaced = definitions.update_workflow_definition(definition.id, ksapi.UpdateWorkflowDefinitionRequest(
        name="Renamed", runner_type="SELF_HOSTED",
        runner_config=ksapi.SelfHostedRunnerConfig(url=start_runner(WEBHOOK_SECRET), webhook_secret=WEBHOOK_SECRET),
        source_path_part_ids=[parts["sources"].path_part_id],
        instruction_path_part_ids=[parts["instructions"].path_part_id],
        output_path_part_ids=[parts["outputs"].path_part_id],
        template_path_part_id=parts["template"].path_part_id, max_run_duration_seconds=120))
    assert replaced.name == "Renamed" and replaced.max_run_duration_seconds == 120
    second = definitions.invoke_workflow(definition.id, ksapi.InvokeWorkflowRequest())
    assert _await_end(client, second.id).status == "COMPLETED"

    page = definitions.list_workflow_runs(definition.id, limit=1, offset=0)
    assert page.total == 2 and [r.id for r in page.items] == [second.id]
    runs.delete_workflow_run(run.id)
    assert definitions.list_workflow_runs(definition.id).total == 1
    definitions.delete_workflow_definition(definition.id)
    with pytest.raises(ApiException) as gone:
        runs.get_workflow_run(second.id)
    assert gone.value.status == 404


def test_concurrent_invokes_with_one_key_through_the_stack(local_stack: LocalStack,
                                                           start_runner: Callable[..., str]) -> None:
    client = _client(local_stack, local_stack.credentials["api_key"])
    parts = _knowledge(client, local_stack.credentials["root_path_part_id"])
    definition = _definition(client, parts, start_runner(WEBHOOK_SECRET))
    key = f"race-{uuid.uuid4()}"
    ids: list[str] = []

    def invoke() -> None:
        api = ksapi.WorkflowDefinitionsApi(_client(local_stack, local_stack.credentials["api_key"]))
        ids.append(str(api.invoke_workflow(definition.id, ksapi.InvokeWorkflowRequest(idempotency_key=key)).id))

    threads = [threading.Thread(target=invoke) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 6 and len(set(ids)) == 1
    assert ksapi.WorkflowDefinitionsApi(client).list_workflow_runs(definition.id).total == 1
    _await_end(client, ids[0])


def test_a_user_reaches_only_what_it_is_granted(local_stack: LocalStack) -> None:
    owner = _client(local_stack, local_stack.credentials["api_key"])
    parts = _knowledge(owner, local_stack.credentials["root_path_part_id"])
    user = local_stack.admin("create-user", "--tenant-id", local_stack.credentials["tenant_id"],
                             "--email", f"{uuid.uuid4().hex[:8]}@example.com", "--role", "USER")
    member = _client(local_stack, user["api_key"])
    me = ksapi.UsersApi(member).get_me()
    assert str(me.id) == user["user_id"] and me.current_tenant_role == "USER"
    with pytest.raises(ApiException) as hidden:
        ksapi.PathPartsApi(member).get_path_part(parts["sources"].path_part_id)
    assert hidden.value.status == 404
    granted = ksapi.UserPermissionsApi(owner).create_user_permission(ksapi.CreatePermissionRequest(
        tenant_id=local_stack.credentials["tenant_id"], user_id=user["user_id"],
        path_part_id=parts["sources"].path_part_id, capability="READ_ONLY"))
    visible = ksapi.PathPartsApi(member).get_path_part(parts["sources"].path_part_id)
    assert visible.can_read and not visible.can_write
    ksapi.UserPermissionsApi(owner).delete_user_permission(granted.id, local_stack.credentials["tenant_id"])
    with pytest.raises(ApiException) as revoked:
        ksapi.PathPartsApi(member).get_path_part(parts["sources"].path_part_id)
    assert revoked.value.status == 404
