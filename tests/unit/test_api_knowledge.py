"""Folders, documents and path parts through the API Lambda, checked against the official SDK models."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from ksapi.models import DocumentResponse, FolderResponse, PathPartResponse

from ksflow.identity.models import CreatedTenant, CreatedUser
from tests.conftest import call_api


def create_folder(parent_id: str, name: str, api_key: str) -> dict[str, Any]:
    response = call_api("POST", "/v1/folders", {"name": name, "parent_path_part_id": parent_id}, api_key)
    assert response.status == 201, response.body
    return dict(response.body)


def create_document(parent_id: str, name: str, api_key: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "parent_path_part_id": parent_id, "document_type": "PLAINTEXT",
            "document_origin": "SOURCE", **fields}
    response = call_api("POST", "/v1/documents", body, api_key)
    assert response.status == 201, response.body
    return dict(response.body)


def assert_validation_error(response: Any, loc_prefix: list[Any]) -> None:
    assert response.status == 422, response.body
    detail = response.body["detail"]
    assert isinstance(detail, list) and detail
    for entry in detail:
        assert {"loc", "msg", "type"} <= set(entry)
        assert isinstance(entry["msg"], str) and entry["msg"]
    assert any(entry["loc"][:len(loc_prefix)] == loc_prefix for entry in detail), detail


# --- folders -------------------------------------------------------------------------------------------------


def test_create_folder_under_root(tenant: CreatedTenant) -> None:
    response = call_api("POST", "/v1/folders", {"name": "Policies", "parent_path_part_id": tenant.root_path_part_id},
                        tenant.api_key)
    assert response.status == 201, response.body
    folder = FolderResponse.from_dict(response.body)
    assert folder is not None
    assert folder.name == "Policies"
    assert folder.part_type == "FOLDER"
    assert folder.materialized_path == "/Policies"
    assert str(folder.parent_path_part_id) == tenant.root_path_part_id
    assert str(folder.tenant_id) == tenant.tenant_id
    assert folder.system_managed is False


def test_nested_folder_path(tenant: CreatedTenant) -> None:
    a = create_folder(tenant.root_path_part_id, "a", tenant.api_key)
    b = create_folder(a["path_part_id"], "b", tenant.api_key)
    c = create_folder(b["path_part_id"], "c d", tenant.api_key)
    assert a["materialized_path"] == "/a"
    assert b["materialized_path"] == "/a/b"
    assert c["materialized_path"] == "/a/b/c d"
    assert b["parent_path_part_id"] == a["path_part_id"]


def test_get_folder_by_its_id(tenant: CreatedTenant) -> None:
    created = create_folder(tenant.root_path_part_id, "Reports", tenant.api_key)
    response = call_api("GET", f"/v1/folders/{created['id']}", api_key=tenant.api_key)
    assert response.status == 200, response.body
    folder = FolderResponse.from_dict(response.body)
    assert folder is not None
    assert str(folder.id) == created["id"]
    assert str(folder.path_part_id) == created["path_part_id"]
    assert folder.materialized_path == "/Reports"
    assert folder.can_write is True
    assert response.body == created


def test_unknown_ids_are_404(tenant: CreatedTenant) -> None:
    for kind in ("folders", "documents", "path-parts"):
        response = call_api("GET", f"/v1/{kind}/{uuid.uuid4()}", api_key=tenant.api_key)
        assert response.status == 404, response.body
        assert isinstance(response.body["detail"], str)


def test_a_document_id_is_not_a_folder_id(tenant: CreatedTenant) -> None:
    document = create_document(tenant.root_path_part_id, "notes.txt", tenant.api_key)
    assert call_api("GET", f"/v1/folders/{document['id']}", api_key=tenant.api_key).status == 404
    folder = create_folder(tenant.root_path_part_id, "f", tenant.api_key)
    assert call_api("GET", f"/v1/documents/{folder['id']}", api_key=tenant.api_key).status == 404


def test_duplicate_sibling_name_is_409(tenant: CreatedTenant) -> None:
    create_folder(tenant.root_path_part_id, "Dup", tenant.api_key)
    again = call_api("POST", "/v1/folders", {"name": "Dup", "parent_path_part_id": tenant.root_path_part_id},
                     tenant.api_key)
    assert again.status == 409, again.body
    assert isinstance(again.body["detail"], str)
    # A document may not take a folder's name either: materialized paths stay unambiguous.
    document = call_api("POST", "/v1/documents", {"name": "Dup", "parent_path_part_id": tenant.root_path_part_id,
                                                  "document_type": "PLAINTEXT", "document_origin": "SOURCE"},
                        tenant.api_key)
    assert document.status == 409, document.body


def test_same_name_under_different_parents_is_fine(tenant: CreatedTenant) -> None:
    a = create_folder(tenant.root_path_part_id, "a", tenant.api_key)
    b = create_folder(tenant.root_path_part_id, "b", tenant.api_key)
    assert create_folder(a["path_part_id"], "same", tenant.api_key)["materialized_path"] == "/a/same"
    assert create_folder(b["path_part_id"], "same", tenant.api_key)["materialized_path"] == "/b/same"


def test_same_name_in_two_tenants_is_fine(tenant: CreatedTenant, other_tenant: CreatedTenant) -> None:
    create_folder(tenant.root_path_part_id, "Shared name", tenant.api_key)
    create_folder(other_tenant.root_path_part_id, "Shared name", other_tenant.api_key)


def test_invalid_name_is_422(tenant: CreatedTenant) -> None:
    for name, kind in (("a/b", "folders"), ("/", "folders"), ("", "folders"), ("x" * 256, "folders"),
                       ("a/b.txt", "documents")):
        body: dict[str, Any] = {"name": name, "parent_path_part_id": tenant.root_path_part_id}
        if kind == "documents":
            body |= {"document_type": "PLAINTEXT", "document_origin": "SOURCE"}
        assert_validation_error(call_api("POST", f"/v1/{kind}", body, tenant.api_key), ["body", "name"])


def test_folder_under_a_document_is_rejected(tenant: CreatedTenant) -> None:
    document = create_document(tenant.root_path_part_id, "doc.txt", tenant.api_key)
    response = call_api("POST", "/v1/folders", {"name": "x", "parent_path_part_id": document["path_part_id"]},
                        tenant.api_key)
    assert response.status in (404, 422), response.body


def test_unknown_parent_is_404(tenant: CreatedTenant) -> None:
    response = call_api("POST", "/v1/folders", {"name": "x", "parent_path_part_id": str(uuid.uuid4())},
                        tenant.api_key)
    assert response.status == 404, response.body


def test_malformed_folder_body_is_422(tenant: CreatedTenant) -> None:
    for body in ({"name": "x"}, {"name": "x", "parent_path_part_id": "not-a-uuid"},
                 {"name": 5, "parent_path_part_id": str(uuid.uuid4())},
                 {"name": "x", "parent_path_part_id": tenant.root_path_part_id, "unexpected": True}):
        assert_validation_error(call_api("POST", "/v1/folders", body, tenant.api_key), ["body"])
    for raw in ("{not json", "[]", "null", ""):
        assert_validation_error(call_api("POST", "/v1/folders", raw_body=raw, api_key=tenant.api_key), ["body"])


# --- documents -----------------------------------------------------------------------------------------------


def test_create_document_starts_at_version_zero(tenant: CreatedTenant) -> None:
    folder = create_folder(tenant.root_path_part_id, "Docs", tenant.api_key)
    response = call_api("POST", "/v1/documents", {"name": "policy.md", "parent_path_part_id": folder["path_part_id"],
                                                  "document_type": "PLAINTEXT", "document_origin": "SOURCE"},
                        tenant.api_key)
    assert response.status == 201, response.body
    document = DocumentResponse.from_dict(response.body)
    assert document is not None
    assert document.part_type == "DOCUMENT"
    assert document.name == "policy.md"
    assert document.materialized_path == "/Docs/policy.md"
    assert document.document_type.value == "PLAINTEXT"
    assert document.document_origin.value == "SOURCE"
    assert str(document.owner_tenant_user_id) == tenant.user_id
    version = document.active_version
    assert version.version == 0
    assert version.name == "v0"
    assert version.id == document.active_version_id
    assert version.parent_path_id == document.path_part_id
    assert version.materialized_path == "/Docs/policy.md/v0"
    assert str(version.uploader_tenant_user_id) == tenant.user_id


def test_get_document_by_its_id(tenant: CreatedTenant) -> None:
    created = create_document(tenant.root_path_part_id, "readme.txt", tenant.api_key, document_type="PDF",
                              document_origin="GENERATED")
    response = call_api("GET", f"/v1/documents/{created['id']}", api_key=tenant.api_key)
    assert response.status == 200, response.body
    document = DocumentResponse.from_dict(response.body)
    assert document is not None
    assert str(document.id) == created["id"]
    assert document.document_type.value == "PDF"
    assert document.document_origin.value == "GENERATED"
    assert document.active_version.version == 0
    assert document.can_write is True


def test_document_type_must_be_known(tenant: CreatedTenant) -> None:
    response = call_api("POST", "/v1/documents", {"name": "x", "parent_path_part_id": tenant.root_path_part_id,
                                                  "document_type": "EXE", "document_origin": "SOURCE"},
                        tenant.api_key)
    assert_validation_error(response, ["body", "document_type"])


# --- path parts ----------------------------------------------------------------------------------------------


def test_root_path_part(tenant: CreatedTenant) -> None:
    response = call_api("GET", f"/v1/path-parts/{tenant.root_path_part_id}", api_key=tenant.api_key)
    assert response.status == 200, response.body
    root = PathPartResponse.from_dict(response.body)
    assert root is not None
    assert root.materialized_path == "/"
    assert root.parent_path_id is None
    assert root.part_type.value == "FOLDER"
    assert root.system_managed is True
    assert (root.can_read, root.can_write) == (True, True)


def test_path_parts_of_a_folder_and_a_document(tenant: CreatedTenant) -> None:
    folder = create_folder(tenant.root_path_part_id, "Area", tenant.api_key)
    document = create_document(folder["path_part_id"], "doc.txt", tenant.api_key)
    for created, part_type in ((folder, "FOLDER"), (document, "DOCUMENT")):
        response = call_api("GET", f"/v1/path-parts/{created['path_part_id']}", api_key=tenant.api_key)
        assert response.status == 200, response.body
        part = PathPartResponse.from_dict(response.body)
        assert part is not None
        assert part.part_type.value == part_type
        assert str(part.metadata_obj_id) == created["id"]
        assert part.materialized_path == created["materialized_path"]
        assert (part.can_read, part.can_write) == (True, True)
    version = call_api("GET", f"/v1/path-parts/{document['active_version']['path_part_id']}", api_key=tenant.api_key)
    assert version.status == 200, version.body
    assert version.body["part_type"] == "DOCUMENT_VERSION"
    assert version.body["parent_path_id"] == document["path_part_id"]


# --- malformed ids and authentication ------------------------------------------------------------------------


def test_malformed_uuid_in_path_is_422(tenant: CreatedTenant) -> None:
    for path in ("/v1/folders/{bad}", "/v1/documents/{bad}", "/v1/path-parts/{bad}"):
        for bad in ("not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"):
            response = call_api("GET", path.format(bad=bad), api_key=tenant.api_key)
            assert_validation_error(response, ["path"])
            assert response.body["detail"][0]["loc"][-1].endswith("_id"), response.body


BAD_CREDENTIALS = [
    {},
    {"authorization": "Bearer"},
    {"authorization": "Bearer "},
    {"authorization": "Bearer sk-not-a-real-key"},
    {"authorization": "Bearer not-even-prefixed"},
    {"authorization": "Basic dXNlcjpwYXNz"},
    {"authorization": "sk-missing-scheme"},
    {"x-api-key": "sk-wrong-header"},
]


def test_missing_or_invalid_credentials_are_401(tenant: CreatedTenant) -> None:
    body = {"name": "x", "parent_path_part_id": tenant.root_path_part_id}
    document = {**body, "document_type": "PLAINTEXT", "document_origin": "SOURCE"}
    requests = [("GET", f"/v1/path-parts/{tenant.root_path_part_id}", None),
                ("GET", f"/v1/folders/{uuid.uuid4()}", None), ("GET", f"/v1/documents/{uuid.uuid4()}", None),
                ("POST", "/v1/folders", body), ("POST", "/v1/documents", document)]
    for headers in BAD_CREDENTIALS:
        for method, path, payload in requests:
            response = call_api(method, path, payload, headers=headers)
            assert response.status == 401, (headers, path, response.body)
            assert isinstance(response.body["detail"], str) and response.body["detail"]
    # Nothing was created by the rejected POSTs.
    create_folder(tenant.root_path_part_id, "x", tenant.api_key)


def test_bearer_scheme_is_case_insensitive(tenant: CreatedTenant) -> None:
    response = call_api("GET", f"/v1/path-parts/{tenant.root_path_part_id}",
                        headers={"authorization": f"bearer {tenant.api_key}"})
    assert response.status == 200, response.body


# --- tenant isolation and roles ------------------------------------------------------------------------------


def test_another_tenants_key_gets_404_for_every_id(tenant: CreatedTenant, other_tenant: CreatedTenant) -> None:
    folder = create_folder(tenant.root_path_part_id, "Private", tenant.api_key)
    document = create_document(folder["path_part_id"], "secret.txt", tenant.api_key)
    stranger = other_tenant.api_key
    reads = [
        f"/v1/folders/{folder['id']}", f"/v1/documents/{document['id']}",
        f"/v1/path-parts/{tenant.root_path_part_id}", f"/v1/path-parts/{folder['path_part_id']}",
        f"/v1/path-parts/{document['path_part_id']}", f"/v1/path-parts/{document['active_version']['path_part_id']}",
    ]
    for path in reads:
        response = call_api("GET", path, api_key=stranger)
        assert response.status == 404, (path, response.body)
    # The answer is the one for an id that does not exist at all.
    missing = call_api("GET", f"/v1/path-parts/{uuid.uuid4()}", api_key=stranger)
    theirs = call_api("GET", f"/v1/path-parts/{folder['path_part_id']}", api_key=stranger)
    assert (theirs.status, theirs.body) == (missing.status, missing.body)
    for parent in (tenant.root_path_part_id, folder["path_part_id"]):
        created = call_api("POST", "/v1/folders", {"name": "intruder", "parent_path_part_id": parent}, stranger)
        assert created.status == 404, created.body
    # Nothing was created in the victim's tree.
    assert create_folder(tenant.root_path_part_id, "intruder", tenant.api_key)["materialized_path"] == "/intruder"


def test_user_without_grants_sees_nothing(tenant: CreatedTenant, member: CreatedUser) -> None:
    folder = create_folder(tenant.root_path_part_id, "Team", tenant.api_key)
    document = create_document(folder["path_part_id"], "plan.txt", tenant.api_key)
    for path in (f"/v1/path-parts/{tenant.root_path_part_id}", f"/v1/folders/{folder['id']}",
                 f"/v1/documents/{document['id']}", f"/v1/path-parts/{document['path_part_id']}"):
        response = call_api("GET", path, api_key=member.api_key)
        assert response.status == 404, (path, response.body)


def test_user_without_grants_cannot_create_under_root(tenant: CreatedTenant, member: CreatedUser) -> None:
    for kind, extra in (("folders", {}), ("documents", {"document_type": "PLAINTEXT", "document_origin": "SOURCE"})):
        response = call_api("POST", f"/v1/{kind}",
                            {"name": "mine", "parent_path_part_id": tenant.root_path_part_id, **extra},
                            member.api_key)
        # The root is not readable to them, so it answers as a parent that does not exist.
        assert response.status == 404, response.body
    # Nothing was created: the owner can still take the name.
    create_folder(tenant.root_path_part_id, "mine", tenant.api_key)


def test_user_with_read_only_grant_reads_the_subtree_but_cannot_write(
        tenant: CreatedTenant, member: CreatedUser, grant: Callable[[str, str, str], None]) -> None:
    shared = create_folder(tenant.root_path_part_id, "Shared", tenant.api_key)
    inner = create_folder(shared["path_part_id"], "Inner", tenant.api_key)
    outside = create_folder(tenant.root_path_part_id, "Outside", tenant.api_key)
    grant(member.user_id, shared["path_part_id"], "READ_ONLY")
    for part in (shared, inner):
        response = call_api("GET", f"/v1/path-parts/{part['path_part_id']}", api_key=member.api_key)
        assert response.status == 200, response.body
        assert (response.body["can_read"], response.body["can_write"]) == (True, False)
    folder = call_api("GET", f"/v1/folders/{inner['id']}", api_key=member.api_key)
    assert folder.status == 200 and folder.body["can_write"] is False
    assert call_api("GET", f"/v1/path-parts/{outside['path_part_id']}", api_key=member.api_key).status == 404
    assert call_api("GET", f"/v1/path-parts/{tenant.root_path_part_id}", api_key=member.api_key).status == 404
    denied = call_api("POST", "/v1/folders", {"name": "new", "parent_path_part_id": inner["path_part_id"]},
                      member.api_key)
    assert denied.status == 403, denied.body


def test_user_with_read_write_grant_creates_in_the_subtree(
        tenant: CreatedTenant, member: CreatedUser, grant: Callable[[str, str, str], None]) -> None:
    shared = create_folder(tenant.root_path_part_id, "Shared", tenant.api_key)
    grant(member.user_id, shared["path_part_id"], "READ_WRITE")
    created = create_folder(shared["path_part_id"], "Mine", member.api_key)
    assert created["materialized_path"] == "/Shared/Mine"
    part = call_api("GET", f"/v1/path-parts/{created['path_part_id']}", api_key=member.api_key)
    assert (part.body["can_read"], part.body["can_write"]) == (True, True)
    document = create_document(created["path_part_id"], "doc.txt", member.api_key)
    assert document["owner_tenant_user_id"] == member.user_id
    assert call_api("POST", "/v1/folders", {"name": "top", "parent_path_part_id": tenant.root_path_part_id},
                    member.api_key).status == 404
