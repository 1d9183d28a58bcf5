"""Names of folders, documents and uploaded files: the same rules everywhere, and any valid name works.

A name is at most 255 characters, so with 4-byte characters it is 1,020 bytes: more than a
DynamoDB sort key may hold once anything else is in the key.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from ksapi.models import DocumentResponse, FolderResponse

from ksflow import aws
from ksflow.identity.models import CreatedTenant
from tests import documents
from tests.conftest import call_api, upload
from tests.unit.test_api_knowledge import assert_validation_error, create_document, create_folder

EMOJI = "\U0001F600"  # 4 bytes in UTF-8
LONGEST = EMOJI * 255
BAD_NAMES = ["nul\x00byte", "bell\x07", "tab\there", "line\nbreak", "esc\x1b[0m", "del\x7f", "c1\x85control", ".",
             "..", "a/b"]
BAD_FILE_NAMES = ["x" * 300 + ".txt", "y" * 1100, "bell\x07.txt", "esc\x1b.txt", "del\x7f.txt", "c1\x9b.txt",
                  ".", "..", "folder/.."]


def _get(path: str, api_key: str) -> Any:
    response = call_api("GET", path, api_key=api_key)
    assert response.status == 200, (path, response.body)
    return response.body


def _stored_files(aws_env: dict[str, str]) -> list[str]:
    listed = boto3.client("s3").list_object_versions(Bucket=aws_env["DOCUMENTS_BUCKET"])
    return [v["Key"] for v in listed.get("Versions", [])]


def _documents_in_table(tenant: CreatedTenant) -> list[str]:
    items = aws.table(os.environ["TABLE_NAME"]).query(
        KeyConditionExpression=Key("pk").eq(f"TENANT#{tenant.tenant_id}"))["Items"]
    return [i["name"] for i in items if i.get("part_type") == "DOCUMENT" and "name" in i]


# --- item 14: long names in bytes ----------------------------------------------------------------------------


def test_folders_and_documents_named_with_255_four_byte_characters_round_trip(tenant: CreatedTenant) -> None:
    root = tenant.root_path_part_id
    folder = FolderResponse.from_dict(create_folder(root, LONGEST, tenant.api_key))
    assert folder.name == LONGEST and folder.materialized_path == f"/{LONGEST}"
    inner_name, document_name = "\U0001F642" * 255, "\U0001F4C4" * 251 + ".txt"
    inner = create_folder(str(folder.path_part_id), inner_name, tenant.api_key)
    document = DocumentResponse.from_dict(create_document(str(folder.path_part_id), document_name, tenant.api_key))
    assert document.materialized_path == f"/{LONGEST}/{document_name}"
    assert document.active_version.materialized_path == f"/{LONGEST}/{document_name}/v0"

    assert _get(f"/v1/folders/{folder.id}", tenant.api_key)["name"] == LONGEST
    assert _get(f"/v1/documents/{document.id}", tenant.api_key)["name"] == document_name
    assert [f["name"] for f in _get("/v1/folders", tenant.api_key)["items"]] == [LONGEST]
    contents = _get(f"/v1/folders/{folder.id}/contents?max_depth=2", tenant.api_key)
    assert [i["name"] for i in contents["items"]] == [document_name, inner_name]  # U+1F4C4 before U+1F642
    assert _get(f"/v1/documents?parent_path_part_id={folder.path_part_id}", tenant.api_key)["total"] == 1

    again = call_api("POST", "/v1/folders", {"name": LONGEST, "parent_path_part_id": root}, tenant.api_key)
    assert again.status == 409, again.body
    assert call_api("DELETE", f"/v1/documents/{document.id}", api_key=tenant.api_key).status == 204
    assert call_api("DELETE", f"/v1/folders/{folder.id}", api_key=tenant.api_key).status == 204
    for path in (f"/v1/folders/{folder.id}", f"/v1/folders/{inner['id']}", f"/v1/documents/{document.id}"):
        assert call_api("GET", path, api_key=tenant.api_key).status == 404, path
    assert _get("/v1/folders", tenant.api_key)["total"] == 0
    # The name is free again.
    assert create_folder(root, LONGEST, tenant.api_key)["name"] == LONGEST


def test_long_names_that_differ_only_at_the_end_are_distinct_and_listed_in_name_order(
        tenant: CreatedTenant) -> None:
    root = tenant.root_path_part_id
    names = [EMOJI * 254 + "b", EMOJI * 254 + "a", EMOJI * 254 + "A", EMOJI * 200, "Zeta", "alpha"]
    for name in names:
        create_folder(root, name, tenant.api_key)
    listed = [f["name"] for f in _get("/v1/folders?limit=100", tenant.api_key)["items"]]
    assert listed == ["alpha", "Zeta", EMOJI * 200, EMOJI * 254 + "A", EMOJI * 254 + "a", EMOJI * 254 + "b"]
    for name in names:
        duplicate = call_api("POST", "/v1/documents", {"name": name, "parent_path_part_id": root}, tenant.api_key)
        assert duplicate.status == 409, (name[-3:], duplicate.body)


def test_an_upload_named_with_255_four_byte_characters(tenant: CreatedTenant) -> None:
    file_name = EMOJI * 251 + ".txt"
    created = documents.ingest(tenant.root_path_part_id, file_name, documents.text(2), tenant.api_key)
    version = upload(f"/v1/documents/{created['document_id']}/ingest", "\U0001F4C4" * 251 + ".txt",
                     documents.text(1), tenant.api_key)
    assert version.status == 201, version.body
    assert _get(f"/v1/documents/{created['document_id']}", tenant.api_key)["name"] == file_name
    for workflow_id in (created["workflow_id"], version.body["workflow_id"]):
        assert documents.finished(workflow_id, tenant.api_key)["status"] == "completed"


# --- item 15: the same name rules everywhere -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["folders", "documents"])
def test_folder_and_document_names_follow_the_name_rules(tenant: CreatedTenant, kind: str) -> None:
    root = tenant.root_path_part_id
    for name in BAD_NAMES:
        response = call_api("POST", f"/v1/{kind}", {"name": name, "parent_path_part_id": root}, tenant.api_key)
        assert_validation_error(response, ["body", "name"])
    for name in ("...", ".hidden", "a..b", "tilde~ and spaces", "\u00e9t\u00e9 \U0001F600", "x" * 255):
        response = call_api("POST", f"/v1/{kind}", {"name": name, "parent_path_part_id": root}, tenant.api_key)
        assert response.status == 201, (name, response.body)
    assert _get(f"/v1/{kind}", tenant.api_key)["total"] == 6


def test_upload_file_names_follow_the_name_rules_and_nothing_is_stored(aws_env: dict[str, str],
                                                                       tenant: CreatedTenant) -> None:
    root = {"path_part_id": tenant.root_path_part_id}
    existing = create_document(tenant.root_path_part_id, "existing.md", tenant.api_key)
    for file_name in BAD_FILE_NAMES:
        for path, fields in (("/v1/documents/ingest", root), ("/v1/documents/ingest", {**root, "name": "fine.txt"}),
                             (f"/v1/documents/{existing['id']}/ingest", {})):
            response = upload(path, file_name, b"hello", tenant.api_key, fields)
            assert_validation_error(response, ["body", "file"])
            assert response.body["detail"][0]["msg"].startswith("File name"), response.body
    too_long = upload("/v1/documents/ingest", "x" * 304, b"hello", tenant.api_key, root)
    assert "at most 255 characters" in too_long.body["detail"][0]["msg"]
    for name in BAD_NAMES:
        response = upload("/v1/documents/ingest", "fine.txt", b"hello", tenant.api_key, {**root, "name": name})
        assert_validation_error(response, ["body", "name"])

    assert _stored_files(aws_env) == []
    assert _documents_in_table(tenant) == ["existing.md"]
    assert _get("/v1/workflows/document_versions", tenant.api_key)["total"] == 0
    assert _get(f"/v1/documents/{existing['id']}", tenant.api_key)["active_version"]["version"] == 0
    # The longest valid file name is accepted.
    accepted = upload("/v1/documents/ingest", "z" * 251 + ".txt", b"hello", tenant.api_key, root)
    assert accepted.status == 201, accepted.body
    documents.finished(accepted.body["workflow_id"], tenant.api_key)
