"""An upload whose name a document already holds is 409 with the call that uploads a new version of it."""

from __future__ import annotations

from ksflow.identity.models import CreatedTenant
from tests import documents
from tests.conftest import upload
from tests.unit.test_api_knowledge import create_folder


def test_duplicate_upload_name_points_at_a_new_version_of_that_document(tenant: CreatedTenant) -> None:
    first = documents.ingest(tenant.root_path_part_id, "policy.md", documents.markdown(1), tenant.api_key)
    duplicate = upload("/v1/documents/ingest", "policy.md", b"# again", tenant.api_key,
                       {"path_part_id": tenant.root_path_part_id})
    assert duplicate.status == 409
    hint = f"POST /v1/documents/{first['document_id']}/ingest"
    assert duplicate.body["detail"] == (f"A document named 'policy.md' already exists in this folder; "
                                        f"to upload a new version of it, use {hint}")
    new_version = upload(hint.split(" ")[1], "policy.md", b"# again", tenant.api_key)
    assert new_version.status == 201, new_version.body
    assert new_version.body["document_id"] == first["document_id"]


def test_a_folder_holding_the_name_gets_no_version_hint(tenant: CreatedTenant) -> None:
    create_folder(tenant.root_path_part_id, "reports", tenant.api_key)
    duplicate = upload("/v1/documents/ingest", "reports", b"x", tenant.api_key,
                       {"path_part_id": tenant.root_path_part_id})
    assert duplicate.status == 409
    assert duplicate.body["detail"] == "A path part named 'reports' already exists in this folder"
