"""What a client sees of the hardening, through the local stack's HTTP port: the SDK where it has
the call, raw signed HTTP where a runner would speak."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import ksapi
import pytest
from ksapi.exceptions import ApiException

from ksflow.workflows import webhooks
from tests.e2e.conftest import LocalStack
from tests.e2e.test_local_stack_sdk import WEBHOOK_SECRET, _client, _definition, _knowledge

pytestmark = pytest.mark.e2e

ROTATED_SECRET = "whsec_" + "cm90YXRlZC1lMmUtc2VjcmV0"


def _signed_post(url: str, body: str, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read())


def _running(client: ksapi.ApiClient, definition_id: Any) -> ksapi.WorkflowRunResponse:
    run = ksapi.WorkflowDefinitionsApi(client).invoke_workflow(definition_id, ksapi.InvokeWorkflowRequest())
    runs = ksapi.WorkflowRunsApi(client)
    deadline = time.monotonic() + 30
    while runs.get_workflow_run(run.id).status != "RUNNING":
        assert time.monotonic() < deadline, "run never became RUNNING"
        time.sleep(0.2)
    return run


def _replace(client: ksapi.ApiClient, definition: Any, parts: dict[str, Any], runner_url: str,
             secret: str, **changes: Any) -> None:
    request = ksapi.UpdateWorkflowDefinitionRequest(
        **{"name": definition.name, "runner_type": "SELF_HOSTED",
           "runner_config": ksapi.SelfHostedRunnerConfig(url=runner_url, webhook_secret=secret),
           "source_path_part_ids": [parts["sources"].path_part_id],
           "instruction_path_part_ids": [parts["instructions"].path_part_id],
           "output_path_part_ids": [parts["outputs"].path_part_id],
           "template_path_part_id": parts["template"].path_part_id, "max_run_duration_seconds": 300, **changes})
    ksapi.WorkflowDefinitionsApi(client).update_workflow_definition(definition.id, request)


def test_a_signed_callback_is_bound_to_its_run_and_follows_the_current_secret(
        local_stack: LocalStack, start_runner: Callable[..., str]) -> None:
    client = _client(local_stack, local_stack.credentials["api_key"])
    parts = _knowledge(client, local_stack.credentials["root_path_part_id"])
    runner = start_runner(WEBHOOK_SECRET, "--delay", "3600")
    definition = _definition(client, parts, runner)
    run_a, run_b = _running(client, definition.id), _running(client, definition.id)
    body = json.dumps({"status": "COMPLETED"})
    headers = webhooks.sign_headers(WEBHOOK_SECRET, f"msg_{uuid.uuid4().hex}", datetime.now(UTC), body)
    callback = f"{local_stack.url}/v1/workflow-runs/{{}}/callback"
    assert _signed_post(callback.format(run_a.id), body, headers) == (200, {"status": "COMPLETED"})
    status, answer = _signed_post(callback.format(run_b.id), body, headers)
    assert status == 401 and isinstance(answer["detail"], str)
    runs = ksapi.WorkflowRunsApi(client)
    assert runs.get_workflow_run(run_b.id).status == "RUNNING"

    _replace(client, definition, parts, runner, ROTATED_SECRET)
    old = webhooks.sign_headers(WEBHOOK_SECRET, "msg_old", datetime.now(UTC), body)
    assert _signed_post(callback.format(run_b.id), body, old)[0] == 401
    new = webhooks.sign_headers(ROTATED_SECRET, "msg_new", datetime.now(UTC), body)
    both = {**new, "webhook-signature": f"{old['webhook-signature']} {new['webhook-signature']}"}
    assert _signed_post(callback.format(run_b.id), body, both) == (200, {"status": "COMPLETED"})
    assert runs.get_workflow_run(run_b.id).status == "COMPLETED"


def test_an_idempotent_retry_after_deactivation_returns_its_run(local_stack: LocalStack,
                                                                start_runner: Callable[..., str]) -> None:
    client = _client(local_stack, local_stack.credentials["api_key"])
    parts = _knowledge(client, local_stack.credentials["root_path_part_id"])
    runner = start_runner(WEBHOOK_SECRET)
    definition = _definition(client, parts, runner)
    api = ksapi.WorkflowDefinitionsApi(client)
    key = "🧾" * 255
    first = api.invoke_workflow(definition.id, ksapi.InvokeWorkflowRequest(idempotency_key=key))
    _replace(client, definition, parts, runner, WEBHOOK_SECRET, is_active=False)
    again = api.invoke_workflow(definition.id, ksapi.InvokeWorkflowRequest(idempotency_key=key))
    assert again.id == first.id
    with pytest.raises(ApiException) as refused:
        api.invoke_workflow(definition.id, ksapi.InvokeWorkflowRequest(idempotency_key="another"))
    assert refused.value.status == 409


def test_an_admin_cannot_point_a_users_definition_at_a_folder_the_user_cannot_read(
        local_stack: LocalStack, start_runner: Callable[..., str]) -> None:
    owner = _client(local_stack, local_stack.credentials["api_key"])
    tenant_id = local_stack.credentials["tenant_id"]
    root = local_stack.credentials["root_path_part_id"]
    parts = _knowledge(owner, root)
    member = local_stack.admin("create-user", "--tenant-id", tenant_id, "--email",
                               f"{uuid.uuid4().hex[:8]}@acme.test", "--role", "USER")
    permissions = ksapi.UserPermissionsApi(owner)
    for part in parts.values():
        permissions.create_user_permission(ksapi.CreatePermissionRequest(
            tenant_id=tenant_id, user_id=member["user_id"], path_part_id=part.path_part_id,
            capability="READ_WRITE"))
    runner = start_runner(WEBHOOK_SECRET, "--delay", "3600")
    users_definition = _definition(_client(local_stack, member["api_key"]), parts, runner)
    salaries = ksapi.FoldersApi(owner).create_folder(ksapi.CreateFolderRequest(
        name=f"HR-salaries-{uuid.uuid4().hex[:6]}", parent_path_part_id=root))
    with pytest.raises(ApiException) as refused:
        _replace(owner, users_definition, {**parts, "sources": salaries}, runner, WEBHOOK_SECRET)
    assert refused.value.status == 422
    assert json.loads(refused.value.body)["detail"][0]["loc"] == ["body", "source_path_part_ids", 0]
