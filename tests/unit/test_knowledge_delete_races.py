"""Creates that race with the delete of an ancestor: nothing survives the delete, nor its stored file.

The API serves one request at a time here, as one Lambda environment does, so each test runs the
delete itself (what `DELETE /v1/folders/{id}` runs) and makes API calls from inside one of its steps.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from ksflow import aws
from ksflow.deletion import cascade
from ksflow.identity.models import CreatedTenant
from ksflow.ingestion import service as ingestion_service
from ksflow.knowledge import permissions, store
from ksflow.knowledge.models import PartType
from ksflow.workflows import runs
from tests import documents
from tests.conftest import Response, call_api, upload, wait_for
from tests.unit.test_api_knowledge import create_document, create_folder


@pytest.fixture
def subtree(tenant: CreatedTenant) -> dict[str, Any]:
    """/a/b (folders) with the metadata-only document /a/b/doc.md."""
    a = create_folder(tenant.root_path_part_id, "a", tenant.api_key)
    b = create_folder(a["path_part_id"], "b", tenant.api_key)
    return {"a": a, "b": b, "doc": create_document(b["path_part_id"], "doc.md", tenant.api_key)}


def _create_everything_under(subtree: dict[str, Any], api_key: str) -> dict[str, Response]:
    """A folder, a document, an upload and a new version of /a/b/doc.md, all inside /a/b."""
    parent = subtree["b"]["path_part_id"]
    return {
        "folder": call_api("POST", "/v1/folders", {"name": "late", "parent_path_part_id": parent}, api_key),
        "document": call_api("POST", "/v1/documents", {"name": "late.md", "parent_path_part_id": parent}, api_key),
        "upload": upload("/v1/documents/ingest", "late.txt", documents.text(1), api_key, {"path_part_id": parent}),
        "version": upload(f"/v1/documents/{subtree['doc']['id']}/ingest", "v1.txt", documents.text(1), api_key),
    }


def _delete(tenant: CreatedTenant, folder: dict[str, Any]) -> None:
    part = store.get_by_object_id(tenant.tenant_id, folder["id"], PartType.FOLDER)
    assert part is not None
    cascade.delete(part)


def _during(monkeypatch: pytest.MonkeyPatch, module: Any, step: str, action: Callable[[], None]) -> None:
    """Run `action` when the delete reaches `step`, then the step itself."""
    real = getattr(module, step)

    def interleaved(*args: Any, **kwargs: Any) -> Any:
        action()
        return real(*args, **kwargs)

    monkeypatch.setattr(module, step, interleaved)


def _stored(tenant: CreatedTenant) -> set[str]:
    items = aws.table(os.environ["TABLE_NAME"]).query(
        KeyConditionExpression=Key("pk").eq(f"TENANT#{tenant.tenant_id}"))["Items"]
    return {i["sk"] for i in items if i["sk"].startswith(("PATHPART#", "OBJECT#", "CHILDNAME#", "LISTED#", "GRANT#",
                                                          "INGESTION#", "CHUNK#"))}


def _assert_nothing_left(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    """Only the root folder remains of the tenant's tree; no record, chunk or stored file either."""
    root = call_api("GET", f"/v1/path-parts/{tenant.root_path_part_id}", api_key=tenant.api_key).body
    stored = _stored(tenant)
    assert stored == {f"PATHPART#{root['path_part_id']}", f"OBJECT#{root['metadata_obj_id']}"}, stored
    listed = boto3.client("s3").list_object_versions(Bucket=aws_env["DOCUMENTS_BUCKET"])
    assert not listed.get("Versions") and not listed.get("DeleteMarkers"), listed
    assert call_api("GET", "/v1/path-parts?max_depth=5", api_key=tenant.api_key).body["total"] == 0
    assert call_api("GET", "/v1/workflows/document_versions", api_key=tenant.api_key).body["total"] == 0


def test_creates_committed_while_the_delete_starts_are_deleted_with_the_subtree(
        aws_env: dict[str, str], tenant: CreatedTenant, subtree: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    created: dict[str, Response] = {}
    # The delete has read the subtree once (to look for runs writing there) when these land.
    _during(monkeypatch, runs, "open_runs_writing_to",
            lambda: created.update(_create_everything_under(subtree, tenant.api_key)))
    _delete(tenant, subtree["a"])

    assert {what: r.status for what, r in created.items()} == dict.fromkeys(created, 201)
    for path in (f"/v1/folders/{created['folder'].body['id']}", f"/v1/documents/{created['document'].body['id']}",
                 f"/v1/documents/{created['upload'].body['document_id']}",
                 f"/v1/document_versions/{created['version'].body['document_version_id']}",
                 f"/v1/workflows/document_versions/{created['upload'].body['workflow_id']}"):
        assert call_api("GET", path, api_key=tenant.api_key).status == 404, path
    _assert_nothing_left(aws_env, tenant)


def test_creates_under_a_folder_being_deleted_are_404_and_store_nothing(
        aws_env: dict[str, str], tenant: CreatedTenant, subtree: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    refused: dict[str, Response] = {}
    # The subtree is fenced and its files are about to be removed: every create finds its parent gone.
    _during(monkeypatch, ingestion_service, "discard",
            lambda: refused.update(_create_everything_under(subtree, tenant.api_key)))
    _delete(tenant, subtree["a"])

    assert {what: r.status for what, r in refused.items()} == dict.fromkeys(refused, 404), {
        what: r.body for what, r in refused.items()}
    assert all(isinstance(r.body["detail"], str) for r in refused.values())
    _assert_nothing_left(aws_env, tenant)


def test_a_delete_cut_short_in_the_request_is_finished_in_the_background(
        aws_env: dict[str, str], tenant: CreatedTenant, subtree: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = permissions.delete_for_path_parts
    calls: list[int] = []

    def crash_once(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise TimeoutError("DynamoDB timed out")
        real(*args)

    monkeypatch.setattr(permissions, "delete_for_path_parts", crash_once)
    response = call_api("DELETE", f"/v1/folders/{subtree['a']['id']}", api_key=tenant.api_key)

    assert response.status == 204
    # Gone for its readers at once, and closed to creates, while the state machine removes the rest.
    for path in (f"/v1/folders/{subtree['a']['id']}", f"/v1/folders/{subtree['b']['id']}",
                 f"/v1/documents/{subtree['doc']['id']}"):
        assert call_api("GET", path, api_key=tenant.api_key).status == 404, path
    for what, created in _create_everything_under(subtree, tenant.api_key).items():
        assert created.status == 404, (what, created.body)
    assert call_api("DELETE", f"/v1/folders/{subtree['a']['id']}", api_key=tenant.api_key).status == 404
    wait_for(lambda: len(_stored(tenant)) == 2)
    _assert_nothing_left(aws_env, tenant)
    assert create_folder(tenant.root_path_part_id, "a", tenant.api_key)["materialized_path"] == "/a"


def test_a_new_version_of_a_document_being_deleted_is_404(
        aws_env: dict[str, str], tenant: CreatedTenant, subtree: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    refused: list[Response] = []
    _during(monkeypatch, ingestion_service, "discard", lambda: refused.append(
        upload(f"/v1/documents/{subtree['doc']['id']}/ingest", "v1.txt", documents.text(1), tenant.api_key)))
    part = store.get_by_object_id(tenant.tenant_id, subtree["doc"]["id"], PartType.DOCUMENT)
    assert part is not None
    cascade.delete(part)

    assert [r.status for r in refused] == [404], [r.body for r in refused]
    assert call_api("GET", f"/v1/documents/{subtree['doc']['id']}", api_key=tenant.api_key).status == 404
    assert "Versions" not in boto3.client("s3").list_object_versions(Bucket=aws_env["DOCUMENTS_BUCKET"])


def test_a_delete_refused_for_an_open_run_changes_nothing(
        aws_env: dict[str, str], tenant: CreatedTenant, subtree: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run writing to /a/b (an output folder below the deleted one) makes the delete 409, and /a stays as it was."""
    asked: list[set[str]] = []

    def open_run_writing_to_b(tenant_id: str, path_part_ids: set[str]) -> list[Any]:
        asked.append(path_part_ids)
        return [SimpleNamespace(id="run-1")] if subtree["b"]["path_part_id"] in path_part_ids else []

    monkeypatch.setattr(runs, "open_runs_writing_to", open_run_writing_to_b)
    before = _stored(tenant)
    refused = call_api("DELETE", f"/v1/folders/{subtree['a']['id']}", api_key=tenant.api_key)
    assert refused.status == 409 and "run-1" in refused.body["detail"]
    assert asked == [{subtree["a"]["path_part_id"], subtree["b"]["path_part_id"]}]
    assert _stored(tenant) == before
    listed = call_api("GET", "/v1/folders", api_key=tenant.api_key).body
    assert [item["name"] for item in listed["items"]] == ["a"] and listed["total"] == 1
    assert call_api("DELETE", f"/v1/documents/{subtree['doc']['id']}", api_key=tenant.api_key).status == 204
