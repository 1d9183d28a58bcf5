"""Listing the knowledge tree and deleting subtrees with everything stored for them."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from ksapi.models import (
    PaginatedResponseAnnotatedUnionFolderResponseDocumentResponseDiscriminator,
    PaginatedResponseDocumentResponse,
    PaginatedResponseFolderResponse,
    PaginatedResponsePathPartResponse,
)

from ksflow import aws
from ksflow.identity.models import CreatedTenant, CreatedUser
from tests import documents
from tests.conftest import call_api
from tests.unit.conftest import callback
from tests.unit.test_api_knowledge import create_document, create_folder


@pytest.fixture
def tree(tenant: CreatedTenant) -> dict[str, Any]:
    """/a (folder) with /a/b (folder), /a/note.md (document), /a/b/deep.md (document), and /z (folder)."""
    a = create_folder(tenant.root_path_part_id, "a", tenant.api_key)
    b = create_folder(a["path_part_id"], "b", tenant.api_key)
    note = create_document(a["path_part_id"], "note.md", tenant.api_key)
    deep = create_document(b["path_part_id"], "deep.md", tenant.api_key)
    z = create_folder(tenant.root_path_part_id, "z", tenant.api_key)
    return {"a": a, "b": b, "note": note, "deep": deep, "z": z}


def _get(path: str, api_key: str) -> Any:
    response = call_api("GET", path, api_key=api_key)
    assert response.status == 200, (path, response.body)
    return response.body


def test_list_folders_and_documents_of_a_parent(tenant: CreatedTenant, tree: dict[str, Any]) -> None:
    root_folders = PaginatedResponseFolderResponse.from_dict(_get("/v1/folders", tenant.api_key))
    assert [f.name for f in root_folders.items] == ["a", "z"] and root_folders.total == 2
    inside = _get(f"/v1/folders?parent_path_part_id={tree['a']['path_part_id']}", tenant.api_key)
    assert [f["name"] for f in inside["items"]] == ["b"]
    docs = PaginatedResponseDocumentResponse.from_dict(
        _get(f"/v1/documents?parent_path_part_id={tree['a']['path_part_id']}", tenant.api_key))
    assert [d.name for d in docs.items] == ["note.md"] and docs.items[0].active_version.name == "v0"
    assert _get("/v1/documents", tenant.api_key)["total"] == 0
    newest = _get("/v1/folders?sort_order=CREATED_AT&limit=1&offset=1", tenant.api_key)
    assert [f["name"] for f in newest["items"]] == ["z"] and newest["total"] == 2
    for query in ("limit=0", "sort_order=SIDEWAYS", "parent_path_part_id=nope"):
        assert call_api("GET", f"/v1/folders?{query}", api_key=tenant.api_key).status == 422, query


def test_folder_contents_by_depth(tenant: CreatedTenant, tree: dict[str, Any]) -> None:
    path = f"/v1/folders/{tree['a']['id']}/contents"
    direct = PaginatedResponseAnnotatedUnionFolderResponseDocumentResponseDiscriminator.from_dict(
        _get(path, tenant.api_key))
    assert [(i.actual_instance.part_type, i.actual_instance.name) for i in direct.items] == [
        ("FOLDER", "b"), ("DOCUMENT", "note.md")]
    deep = _get(f"{path}?max_depth=2", tenant.api_key)
    assert [i["materialized_path"] for i in deep["items"]] == ["/a/b", "/a/b/deep.md", "/a/note.md"]
    paged = _get(f"{path}?max_depth=2&limit=1&offset=2", tenant.api_key)
    assert [i["name"] for i in paged["items"]] == ["note.md"] and paged["total"] == 3
    assert call_api("GET", f"/v1/folders/{tree['note']['id']}/contents", api_key=tenant.api_key).status == 404


def test_path_parts_list_children_including_versions(tenant: CreatedTenant, tree: dict[str, Any]) -> None:
    top = PaginatedResponsePathPartResponse.from_dict(_get("/v1/path-parts", tenant.api_key))
    assert [p.name for p in top.items] == ["a", "z"]
    versions = _get(f"/v1/path-parts?parent_path_id={tree['note']['path_part_id']}", tenant.api_key)
    assert [(p["name"], p["part_type"]) for p in versions["items"]] == [("v0", "DOCUMENT_VERSION")]
    everything = _get(f"/v1/path-parts?parent_path_id={tree['a']['path_part_id']}&max_depth=3", tenant.api_key)
    assert [p["materialized_path"] for p in everything["items"]] == [
        "/a/b", "/a/b/deep.md", "/a/b/deep.md/v0", "/a/note.md", "/a/note.md/v0"]


def test_listings_follow_access(tenant: CreatedTenant, tree: dict[str, Any], member: CreatedUser,
                                other_tenant: CreatedTenant, grant: Callable[[str, str, str], None]) -> None:
    a = tree["a"]["path_part_id"]
    for path in ("/v1/folders", f"/v1/folders?parent_path_part_id={a}", f"/v1/documents?parent_path_part_id={a}",
                 f"/v1/folders/{tree['a']['id']}/contents", f"/v1/path-parts?parent_path_id={a}"):
        assert call_api("GET", path, api_key=member.api_key).status == 404, path
        assert call_api("GET", path, api_key=other_tenant.api_key).status in (200, 404), path
    assert _get("/v1/folders", other_tenant.api_key)["total"] == 0
    grant(member.user_id, a, "READ_ONLY")
    contents = _get(f"/v1/folders/{tree['a']['id']}/contents", member.api_key)
    assert [i["name"] for i in contents["items"]] == ["b", "note.md"]
    assert all(i["can_write"] is False for i in contents["items"])
    version_id = tree["deep"]["active_version_id"]
    assert _get(f"/v1/document_versions/{version_id}", member.api_key)["name"] == "v0"
    assert call_api("GET", f"/v1/document_versions/{version_id}", api_key=other_tenant.api_key).status == 404
    assert call_api("GET", f"/v1/document_versions/{tree['deep']['id']}", api_key=tenant.api_key).status == 404


def _items(tenant: CreatedTenant) -> list[dict[str, Any]]:
    table = aws.table(os.environ["TABLE_NAME"])
    return list(table.query(KeyConditionExpression=Key("pk").eq(f"TENANT#{tenant.tenant_id}"))["Items"])


def test_deleting_a_folder_removes_everything_under_it(aws_env: dict[str, str], tenant: CreatedTenant,
                                                       tree: dict[str, Any], member: CreatedUser,
                                                       grant: Callable[[str, str, str], None]) -> None:
    ingested = documents.ingest(tree["b"]["path_part_id"], "report.pdf", documents.pdf(), tenant.api_key)
    documents.finished(ingested["workflow_id"], tenant.api_key)
    second = documents.ingest(tree["z"]["path_part_id"], "keep.md", documents.markdown(1), tenant.api_key)
    documents.finished(second["workflow_id"], tenant.api_key)
    assert call_api("POST", f"/v1/workflows/document_versions/{ingested['workflow_id']}",
                    api_key=tenant.api_key).status == 200
    documents.finished(ingested["workflow_id"], tenant.api_key)
    grant(member.user_id, tree["b"]["path_part_id"], "READ_ONLY")
    before = _items(tenant)

    assert call_api("DELETE", f"/v1/folders/{tree['a']['id']}", api_key=tenant.api_key).status == 204
    gone_ids = {tree[k]["path_part_id"] for k in ("a", "b", "note", "deep")}
    after = _items(tenant)
    assert not [i for i in after if i.get("path_part_id") in gone_ids or ingested["document_version_id"] in i["sk"]]
    assert not [i for i in after if i["sk"].startswith(("GRANT#", "PERMISSION#"))]
    assert len(before) - len(after) > 10
    bucket = aws_env["DOCUMENTS_BUCKET"]
    listed = boto3.client("s3").list_object_versions(Bucket=bucket)
    assert [v["Key"].split("/")[3] for v in listed.get("Versions", [])] == [second["document_version_id"]]
    assert not listed.get("DeleteMarkers")
    for path in (f"/v1/folders/{tree['a']['id']}", f"/v1/folders/{tree['b']['id']}",
                 f"/v1/documents/{tree['note']['id']}", f"/v1/documents/{ingested['document_id']}",
                 f"/v1/workflows/document_versions/{ingested['workflow_id']}"):
        assert call_api("GET", path, api_key=tenant.api_key).status == 404, path
    assert documents.detail(second["workflow_id"], tenant.api_key)["status"] == "completed"
    assert [f["name"] for f in _get("/v1/folders", tenant.api_key)["items"]] == ["z"]
    assert call_api("DELETE", f"/v1/folders/{tree['a']['id']}", api_key=tenant.api_key).status == 404
    # The name is free again.
    create_folder(tenant.root_path_part_id, "a", tenant.api_key)


def test_deleting_a_document(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    created = documents.ingest(tenant.root_path_part_id, "notes.txt", documents.text(), tenant.api_key)
    documents.finished(created["workflow_id"], tenant.api_key)
    assert call_api("DELETE", f"/v1/documents/{created['document_id']}", api_key=tenant.api_key).status == 204
    assert call_api("GET", f"/v1/documents/{created['document_id']}", api_key=tenant.api_key).status == 404
    assert not [i for i in _items(tenant) if created["document_version_id"] in i["sk"]]
    assert "Versions" not in boto3.client("s3").list_object_versions(Bucket=aws_env["DOCUMENTS_BUCKET"])
    assert _get("/v1/workflows/document_versions", tenant.api_key)["total"] == 0


def test_delete_permissions(tenant: CreatedTenant, tree: dict[str, Any], member: CreatedUser,
                            other_tenant: CreatedTenant, grant: Callable[[str, str, str], None]) -> None:
    root = _get(f"/v1/path-parts/{tenant.root_path_part_id}", tenant.api_key)
    assert call_api("DELETE", f"/v1/folders/{root['metadata_obj_id']}", api_key=tenant.api_key).status == 403
    for path in (f"/v1/folders/{tree['b']['id']}", f"/v1/documents/{tree['note']['id']}"):
        assert call_api("DELETE", path, api_key=other_tenant.api_key).status == 404
        assert call_api("DELETE", path, api_key=member.api_key).status == 404
    grant(member.user_id, tree["a"]["path_part_id"], "READ_ONLY")
    assert call_api("DELETE", f"/v1/folders/{tree['b']['id']}", api_key=member.api_key).status == 403
    assert call_api("DELETE", f"/v1/documents/{tree['note']['id']}", api_key=member.api_key).status == 403
    assert call_api("DELETE", f"/v1/folders/{tree['note']['id']}", api_key=tenant.api_key).status == 404
    assert call_api("DELETE", f"/v1/documents/{tree['b']['id']}", api_key=tenant.api_key).status == 404
    assert _get(f"/v1/folders/{tree['b']['id']}", tenant.api_key)["name"] == "b"


def test_delete_refused_while_a_running_run_writes_there(tenant: CreatedTenant, knowledge: dict[str, str],
                                                         silent_run: dict[str, Any]) -> None:
    output = _get(f"/v1/path-parts/{knowledge['output']}", tenant.api_key)
    inner = create_folder(knowledge["output"], "inner", tenant.api_key)
    path = f"/v1/folders/{output['metadata_obj_id']}"
    refused = call_api("DELETE", path, api_key=tenant.api_key)
    assert refused.status == 409 and silent_run["id"] in refused.body["detail"]
    # A refused delete leaves the folder open to creates.
    create_folder(knowledge["output"], "after the refusal", tenant.api_key)
    # Below the output folder is the user's business.
    assert call_api("DELETE", f"/v1/folders/{inner['id']}", api_key=tenant.api_key).status == 204
    callback(silent_run["id"], {"status": "COMPLETED"})
    assert call_api("DELETE", path, api_key=tenant.api_key).status == 204
