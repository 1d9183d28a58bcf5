"""The whole loop as the README shows it: a runner with a service user's key reads its sources and writes
its result document, and the SDK reads that document's text back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import ksapi
import pytest

from tests.e2e.conftest import LocalStack
from tests.e2e.test_ingestion_sdk import _finished
from tests.e2e.test_local_stack_sdk import WEBHOOK_SECRET, _await_end, _client, _definition, _knowledge

pytestmark = pytest.mark.e2e

SOURCE = b"Travel policy\n\nBook economy for flights under six hours.\nKeep every receipt.\n"


def _text(client: ksapi.ApiClient, version_id: str) -> str:
    contents = ksapi.DocumentVersionsApi(client).get_document_version_contents(
        version_id, content_type=ksapi.DocumentVersionContentTypeFilter.CHUNK, limit=100)
    return "".join(item.actual_instance.content for item in contents.items)


def _document_named(client: ksapi.ApiClient, folder: ksapi.FolderResponse, name: str) -> ksapi.DocumentResponse:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = ksapi.DocumentsApi(client).list_documents(parent_path_part_id=folder.path_part_id, limit=100)
        found = [d for d in listed.items if d.name == name]
        if found:
            return found[0]
        time.sleep(0.3)
    raise AssertionError(f"{name} did not appear in {folder.materialized_path}")


def _service_user(stack: LocalStack, owner: ksapi.ApiClient,
                  grants: list[tuple[ksapi.FolderResponse, str]]) -> dict[str, str]:
    """A USER made with `ksflow admin create-user`, with the grants its runner needs."""
    service = stack.admin("create-user", "--tenant-id", stack.credentials["tenant_id"],
                          "--email", f"runner-{uuid.uuid4().hex[:8]}@example.com", "--role", "USER")
    for folder, capability in grants:
        ksapi.UserPermissionsApi(owner).create_user_permission(ksapi.CreatePermissionRequest(
            tenant_id=stack.credentials["tenant_id"], user_id=service["user_id"], path_part_id=folder.path_part_id,
            capability=capability))
    return service


def test_runner_reads_its_sources_and_writes_a_summary(local_stack: LocalStack,
                                                       start_runner: Callable[..., str]) -> None:
    owner = _client(local_stack, local_stack.credentials["api_key"])
    parts = _knowledge(owner, local_stack.credentials["root_path_part_id"])
    source = ksapi.DocumentsApi(owner).ingest_document(file=("travel.md", SOURCE),
                                                       path_part_id=parts["sources"].path_part_id)
    assert _finished(owner, source.workflow_id).status == "completed"

    service = _service_user(local_stack, owner, [(parts["sources"], "READ_ONLY"), (parts["outputs"], "READ_WRITE")])
    definition = _definition(owner, parts, start_runner(WEBHOOK_SECRET, "--api-key", service["api_key"]))
    run = ksapi.WorkflowDefinitionsApi(owner).invoke_workflow(definition.id, ksapi.InvokeWorkflowRequest())
    final = _await_end(owner, run.id)
    assert (final.status, final.error) == ("COMPLETED", None)

    summary = _document_named(owner, parts["outputs"], f"summary-{run.id}.md")
    assert str(summary.owner_tenant_user_id) == service["user_id"]
    assert _finished(owner, f"ingest-{summary.active_version_id}").status == "completed"
    text = _text(owner, str(summary.active_version_id))
    assert "## travel.md" in text and "Travel policy" in text and "Book economy for flights" in text


def test_runner_without_write_access_reports_why_it_failed(local_stack: LocalStack,
                                                           start_runner: Callable[..., str]) -> None:
    owner = _client(local_stack, local_stack.credentials["api_key"])
    parts = _knowledge(owner, local_stack.credentials["root_path_part_id"])
    reader = _service_user(local_stack, owner, [(parts["sources"], "READ_ONLY"), (parts["outputs"], "READ_ONLY")])
    definition = _definition(owner, parts, start_runner(WEBHOOK_SECRET, "--api-key", reader["api_key"]))
    run = ksapi.WorkflowDefinitionsApi(owner).invoke_workflow(definition.id, ksapi.InvokeWorkflowRequest())
    final = _await_end(owner, run.id)
    assert final.status == "FAILED"
    assert "POST /v1/documents/ingest answered HTTP 403" in final.error and "write access" in final.error
