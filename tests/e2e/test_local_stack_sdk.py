"""A newcomer's path through the local stack with the official `ksapi` SDK and real runner processes."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import ksapi
import pytest
from ksapi.exceptions import ApiException

from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e
WEBHOOK_SECRET = "whsec_" + "ZTJlLXJ1bm5lci1zZWNyZXQtdmFsdWU="


def _client(stack: LocalStack, api_key: str) -> ksapi.ApiClient:
    client = ksapi.ApiClient(ksapi.Configuration(host=stack.url))
    client.set_default_header("Authorization", f"Bearer {api_key}")
    return client


def _knowledge(client: ksapi.ApiClient, root: str) -> dict[str, Any]:
    folders, documents = ksapi.FoldersApi(client), ksapi.DocumentsApi(client)
    suffix = uuid.uuid4().hex[:8]
    sources = folders.create_folder(ksapi.CreateFolderRequest(name=f"policies-{suffix}", parent_path_part_id=root))
    outputs = folders.create_folder(ksapi.CreateFolderRequest(name=f"summaries-{suffix}", parent_path_part_id=root))

    def document(name: str) -> ksapi.DocumentResponse:
        return documents.create_document(ksapi.CreateDocumentRequest(
            name=f"{name}-{suffix}.md", parent_path_part_id=root, document_type="PLAINTEXT",
            document_origin="SOURCE"))

    return {"sources": sources, "outputs": outputs, "instructions": document("instructions"),
            "template": document("template")}


def _definition(client: ksapi.ApiClient, parts: dict[str, Any], runner_url: str) -> ksapi.WorkflowDefinitionResponse:
    return ksapi.WorkflowDefinitionsApi(client).create_workflow_definition(ksapi.CreateWorkflowDefinitionRequest(
        name="Summarise Policy Documents", runner_type="SELF_HOSTED",
        runner_config=ksapi.SelfHostedRunnerConfig(url=runner_url, webhook_secret=WEBHOOK_SECRET),
        source_path_part_ids=[parts["sources"].path_part_id],
        instruction_path_part_ids=[parts["instructions"].path_part_id],
        output_path_part_ids=[parts["outputs"].path_part_id],
        template_path_part_id=parts["template"].path_part_id, max_run_duration_seconds=60))


def _await_end(client: ksapi.ApiClient, run_id: Any) -> ksapi.WorkflowRunResponse:
    runs = ksapi.WorkflowRunsApi(client)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = runs.get_workflow_run(run_id)
        if run.status in ("COMPLETED", "FAILED"):
            return run
        time.sleep(0.3)
    raise AssertionError("run did not end")


def test_run_completes_through_sdk_and_runner(local_stack: LocalStack, start_runner: Callable[..., str]) -> None:
    client = _client(local_stack, local_stack.credentials["api_key"])
    parts = _knowledge(client, local_stack.credentials["root_path_part_id"])
    definition = _definition(client, parts, start_runner(WEBHOOK_SECRET))
    assert definition.runner_config.url.startswith("http://127.0.0.1:")

    api = ksapi.WorkflowDefinitionsApi(client)
    request = ksapi.InvokeWorkflowRequest(idempotency_key=f"nightly-{uuid.uuid4()}")
    run = api.invoke_workflow(definition.id, request)
    again = api.invoke_workflow(definition.id, request)
    assert run.status == "PENDING" and again.id == run.id
    assert run.run_snapshot.template.materialized_path == parts["template"].materialized_path

    final = _await_end(client, run.id)
    assert final.status == "COMPLETED" and final.error is None and final.completed_at is not None


def test_runner_reporting_failure(local_stack: LocalStack, start_runner: Callable[..., str]) -> None:
    client = _client(local_stack, local_stack.credentials["api_key"])
    parts = _knowledge(client, local_stack.credentials["root_path_part_id"])
    definition = _definition(client, parts, start_runner(WEBHOOK_SECRET, "--fail"))
    run = ksapi.WorkflowDefinitionsApi(client).invoke_workflow(definition.id, ksapi.InvokeWorkflowRequest())
    final = _await_end(client, run.id)
    assert final.status == "FAILED" and final.error == "Example runner was asked to fail"


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_callbacks_must_be_signed(local_stack: LocalStack, start_runner: Callable[..., str]) -> None:
    client = _client(local_stack, local_stack.credentials["api_key"])
    parts = _knowledge(client, local_stack.credentials["root_path_part_id"])
    definition = _definition(client, parts, start_runner(WEBHOOK_SECRET))
    run = ksapi.WorkflowDefinitionsApi(client).invoke_workflow(definition.id, ksapi.InvokeWorkflowRequest())
    callback = f"{local_stack.url}/v1/workflow-runs/{run.id}/callback"
    assert _post(callback, {"status": "COMPLETED"}, {}) == 401
    forged = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,Zm9yZ2Vk"}
    assert _post(callback, {"status": "COMPLETED"}, forged) == 401
    assert _await_end(client, run.id).status == "COMPLETED"


def test_other_tenant_sees_nothing(local_stack: LocalStack, start_runner: Callable[..., str]) -> None:
    owner = _client(local_stack, local_stack.credentials["api_key"])
    parts = _knowledge(owner, local_stack.credentials["root_path_part_id"])
    definition = _definition(owner, parts, start_runner(WEBHOOK_SECRET))
    run = ksapi.WorkflowDefinitionsApi(owner).invoke_workflow(definition.id, ksapi.InvokeWorkflowRequest())

    stranger_tenant = local_stack.admin("create-tenant", "--name", "Globex")
    assert set(stranger_tenant) == {"tenant_id", "root_path_part_id", "user_id", "api_key"}
    stranger = _client(local_stack, stranger_tenant["api_key"])
    lookups = [
        lambda: ksapi.FoldersApi(stranger).get_folder(parts["sources"].id),
        lambda: ksapi.DocumentsApi(stranger).get_document(parts["instructions"].id),
        lambda: ksapi.PathPartsApi(stranger).get_path_part(parts["sources"].path_part_id),
        lambda: ksapi.WorkflowDefinitionsApi(stranger).get_workflow_definition(definition.id),
        lambda: ksapi.WorkflowDefinitionsApi(stranger).invoke_workflow(definition.id, ksapi.InvokeWorkflowRequest()),
        lambda: ksapi.WorkflowRunsApi(stranger).get_workflow_run(run.id),
    ]
    for lookup in lookups:
        with pytest.raises(ApiException) as caught:
            lookup()
        assert caught.value.status == 404

    user = local_stack.admin("create-user", "--tenant-id", local_stack.credentials["tenant_id"],
                             "--email", "member@example.com", "--role", "USER")
    member = _client(local_stack, user["api_key"])
    with pytest.raises(ApiException) as caught:
        ksapi.WorkflowRunsApi(member).get_workflow_run(run.id)
    assert caught.value.status == 404
    _await_end(owner, run.id)


def test_logs_never_contain_secrets(local_stack: LocalStack, start_runner: Callable[..., str]) -> None:
    test_run_completes_through_sdk_and_runner(local_stack, start_runner)
    stranger = local_stack.admin("create-tenant", "--name", "Initech")
    logs = local_stack.process.output()
    assert WEBHOOK_SECRET not in logs and WEBHOOK_SECRET.removeprefix("whsec_") not in logs
    assert stranger["api_key"] not in logs
    assert "Authorization" not in logs and "Bearer sk-" not in logs
