"""Uploads and their ingestion workflows through the API Lambda, executed on moto's Step Functions."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from ksapi.models import (
    DocumentResponse,
    DocumentVersionResponse,
    IngestDocumentResponse,
    PaginatedResponseWorkflowSummaryResponse,
    TemporalWorkflowStatusResponse,
    WorkflowActionResponse,
    WorkflowCancelResponse,
    WorkflowDetailResponse,
)

from ksflow import aws
from ksflow.api.ingestion import MAX_UPLOAD_BYTES
from ksflow.identity.models import CreatedTenant, CreatedUser
from ksflow.ingestion import pipeline
from ksflow.ingestion import store as ingestion_store
from tests import documents
from tests.conftest import call_api, upload, wait_for
from tests.unit.test_api_knowledge import create_document, create_folder

FORMATS = {
    "policy.md": (documents.markdown, "PLAINTEXT", "Section 3"),
    "notes.txt": (documents.text, "PLAINTEXT", "seven years"),
    "stock.csv": (documents.csv_file, "CSV", "widget-41 | 123"),
    "report.pdf": (documents.pdf, "PDF", "Page 2."),
    "letter.docx": (documents.docx, "DOCX", "invoice | 7"),
}


def _chunks(tenant: CreatedTenant, version_id: str) -> list[dict[str, Any]]:
    return ingestion_store.list_chunks(tenant.tenant_id, version_id)


@pytest.mark.parametrize("file_name", sorted(FORMATS))
def test_each_format_completes_with_chunks(tenant: CreatedTenant, file_name: str) -> None:
    generate, document_type, expected_text = FORMATS[file_name]
    created = documents.ingest(tenant.root_path_part_id, file_name, generate(), tenant.api_key)
    response = IngestDocumentResponse.from_dict(created)
    assert response.workflow_id == f"ingest-{response.document_version_id}"
    final = documents.finished(response.workflow_id, tenant.api_key)
    detail = WorkflowDetailResponse.from_dict(final)
    assert (detail.status, detail.error, detail.last_activity) == ("completed", None, "completed"), final
    assert final["execution_status"] == "COMPLETED" and detail.close_time is not None
    assert detail.run_id == f"{response.workflow_id}-1" and detail.workflow_type == "document_version_ingestion"
    chunks = _chunks(tenant, str(response.document_version_id))
    assert detail.chunks_processed == len(chunks) > 0
    assert [c["index"] for c in chunks] == list(range(len(chunks)))
    assert any(expected_text in c["text"] for c in chunks)
    document = DocumentResponse.from_dict(
        call_api("GET", f"/v1/documents/{response.document_id}", api_key=tenant.api_key).body)
    assert document.name == file_name and document.document_type.value == document_type
    assert document.active_version_id == response.document_version_id and document.active_version.version == 0


def test_upload_is_stored_under_the_version_with_sse_kms(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    data = documents.pdf()
    created = documents.ingest(tenant.root_path_part_id, "Board Minutes (final).pdf", data, tenant.api_key,
                               name="minutes.pdf")
    documents.finished(created["workflow_id"], tenant.api_key)
    s3 = boto3.client("s3")
    prefix = f"tenants/{tenant.tenant_id}/document-versions/{created['document_version_id']}/"
    [stored] = s3.list_objects_v2(Bucket=aws_env["DOCUMENTS_BUCKET"], Prefix=prefix)["Contents"]
    assert stored["Key"] == prefix + "Board_Minutes_final_.pdf"
    head = s3.head_object(Bucket=aws_env["DOCUMENTS_BUCKET"], Key=stored["Key"])
    assert head["ServerSideEncryption"] == "aws:kms" and head["ContentType"] == "application/pdf"
    assert s3.get_object(Bucket=aws_env["DOCUMENTS_BUCKET"], Key=stored["Key"])["Body"].read() == data
    document = call_api("GET", f"/v1/documents/{created['document_id']}", api_key=tenant.api_key).body
    assert document["name"] == "minutes.pdf"


def test_unsupported_type_is_accepted_and_fails_with_a_clear_error(tenant: CreatedTenant) -> None:
    created = documents.ingest(tenant.root_path_part_id, "budget.xlsx", b"PK\x03\x04...", tenant.api_key)
    final = documents.finished(created["workflow_id"], tenant.api_key)
    assert final["status"] == "failed" and final["execution_status"] == "FAILED"
    assert "Unsupported file type (.xlsx" in final["error"] and "DOCX (.docx)" in final["error"]
    assert final["chunks_processed"] is None and final["last_activity"] == "failed"
    document = call_api("GET", f"/v1/documents/{created['document_id']}", api_key=tenant.api_key).body
    assert document["document_type"] == "XLSX"


def test_corrupt_pdf_fails_and_its_rerun_fails_again(tenant: CreatedTenant) -> None:
    created = documents.ingest(tenant.root_path_part_id, "broken.pdf", documents.corrupt_pdf(), tenant.api_key)
    workflow_id = created["workflow_id"]
    first = documents.finished(workflow_id, tenant.api_key)
    assert first["status"] == "failed" and first["error"].startswith("The PDF could not be read")
    rerun = call_api("POST", f"/v1/workflows/document_versions/{workflow_id}", api_key=tenant.api_key)
    assert rerun.status == 200, rerun.body
    action = WorkflowActionResponse.from_dict(rerun.body)
    assert (action.workflow_id, action.action) == (workflow_id, "rerun")
    second = documents.finished(workflow_id, tenant.api_key)
    assert second["status"] == "failed" and second["error"] == first["error"]
    assert second["run_id"] == f"{workflow_id}-2" and second["last_run_timestamp"] > first["last_run_timestamp"]
    assert _chunks(tenant, created["document_version_id"]) == []


def test_rerun_replaces_chunks_with_the_same_count(tenant: CreatedTenant) -> None:
    created = documents.ingest(tenant.root_path_part_id, "policy.md", documents.markdown(6), tenant.api_key)
    version_id, workflow_id = created["document_version_id"], created["workflow_id"]
    count = documents.finished(workflow_id, tenant.api_key)["chunks_processed"]
    before = [(c["sk"], c["text"]) for c in _chunks(tenant, version_id)]
    # A chunk left over by a longer earlier attempt, which raised the extent, must not survive a rerun.
    table = aws.table(os.environ["TABLE_NAME"])
    table.put_item(Item={"pk": f"TENANT#{tenant.tenant_id}#CHUNKS#{version_id}#0", "sk": f"CHUNK#{count:09d}",
                         "text": "stale"})
    table.update_item(Key=ingestion_store.key(tenant.tenant_id, version_id), UpdateExpression="SET chunk_extent = :e",
                      ExpressionAttributeValues={":e": count + 1})
    assert call_api("POST", f"/v1/workflows/document_versions/{workflow_id}", api_key=tenant.api_key).status == 200
    again = documents.finished(workflow_id, tenant.api_key)
    assert again["status"] == "completed" and again["chunks_processed"] == count
    after = _chunks(tenant, version_id)
    assert [(c["sk"], c["text"]) for c in after] == before and {c["attempt"] for c in after} == {2}


@pytest.fixture
def held(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Ingest tasks wait until the test sets the event, so an ingestion stays open meanwhile."""
    release = threading.Event()
    real = pipeline.ingest

    def waiting(*args: str) -> dict[str, Any]:
        release.wait(30)
        return real(*args)

    monkeypatch.setattr(pipeline, "ingest", waiting)
    yield release
    release.set()


def test_rerun_refused_while_open_then_cancel(aws_env: dict[str, str], tenant: CreatedTenant,
                                              held: threading.Event) -> None:
    created = documents.ingest(tenant.root_path_part_id, "notes.txt", documents.text(), tenant.api_key)
    workflow_id = created["workflow_id"]
    assert documents.detail(workflow_id, tenant.api_key)["status"] == "pending"
    rerun = call_api("POST", f"/v1/workflows/document_versions/{workflow_id}", api_key=tenant.api_key)
    assert rerun.status == 409 and "still pending" in rerun.body["detail"]
    status = call_api("GET", f"/v1/workflows/{workflow_id}", api_key=tenant.api_key)
    assert TemporalWorkflowStatusResponse.from_dict(status.body).temporal_status == "RUNNING"

    cancelled = call_api("DELETE", f"/v1/workflows/{workflow_id}", api_key=tenant.api_key)
    assert cancelled.status == 200, cancelled.body
    assert WorkflowCancelResponse.from_dict(cancelled.body).workflow_id == workflow_id
    assert call_api("DELETE", f"/v1/workflows/{workflow_id}", api_key=tenant.api_key).status == 409
    held.set()
    client = boto3.client("stepfunctions")
    arn = aws_env["INGESTION_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:") + f":{workflow_id}-1"
    assert wait_for(lambda: (s := client.describe_execution(executionArn=arn)["status"]) != "RUNNING" and s) \
        == "ABORTED"
    final = documents.detail(workflow_id, tenant.api_key)
    assert (final["status"], final["execution_status"], final["last_activity"]) == (
        "cancelled", "CANCELED", "cancelled")
    assert final["close_time"] is not None and final["chunks_processed"] is None

    assert call_api("POST", f"/v1/workflows/document_versions/{workflow_id}", api_key=tenant.api_key).status == 200
    rerun_final = documents.finished(workflow_id, tenant.api_key)
    assert rerun_final["status"] == "completed" and rerun_final["chunks_processed"] > 0
    assert call_api("DELETE", f"/v1/workflows/{workflow_id}", api_key=tenant.api_key).status == 409


def test_new_version_of_a_document(tenant: CreatedTenant) -> None:
    first = documents.ingest(tenant.root_path_part_id, "policy.md", documents.markdown(1), tenant.api_key)
    second = upload(f"/v1/documents/{first['document_id']}/ingest", "policy-v2.pdf", documents.pdf(), tenant.api_key)
    assert second.status == 201, second.body
    assert second.body["document_id"] == first["document_id"]
    assert second.body["document_version_id"] != first["document_version_id"]
    for created in (first, second.body):
        assert documents.finished(created["workflow_id"], tenant.api_key)["status"] == "completed"
    document = call_api("GET", f"/v1/documents/{first['document_id']}", api_key=tenant.api_key).body
    assert document["active_version_id"] == second.body["document_version_id"]
    assert (document["active_version"]["version"], document["active_version"]["name"]) == (1, "v1")
    assert document["document_type"] == "PDF" and document["name"] == "policy.md"
    version = call_api("GET", f"/v1/document_versions/{first['document_version_id']}", api_key=tenant.api_key)
    assert version.status == 200
    assert DocumentVersionResponse.from_dict(version.body).materialized_path == "/policy.md/v0"
    listed = call_api("GET", "/v1/workflows/document_versions", api_key=tenant.api_key).body
    assert [i["workflow_id"] for i in listed["items"]] == [second.body["workflow_id"], first["workflow_id"]]
    metadata_only = create_document(tenant.root_path_part_id, "empty.md", tenant.api_key)
    added = upload(f"/v1/documents/{metadata_only['id']}/ingest", "empty.md", documents.markdown(1), tenant.api_key)
    assert added.status == 201
    documents.finished(added.body["workflow_id"], tenant.api_key)


def test_upload_requests_are_validated(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    root = {"path_part_id": tenant.root_path_part_id}
    missing_file = call_api("POST", "/v1/documents/ingest", api_key=tenant.api_key,
                            headers={"content-type": "multipart/form-data; boundary=xyz"},
                            raw_body=f'--xyz\r\nContent-Disposition: form-data; name="path_part_id"\r\n\r\n'
                                     f'{tenant.root_path_part_id}\r\n--xyz--\r\n')
    assert missing_file.status == 422 and ["body", "file"] in [d["loc"] for d in missing_file.body["detail"]]
    bad_parent = upload("/v1/documents/ingest", "a.txt", b"x", tenant.api_key, {"path_part_id": "nope"})
    assert bad_parent.status == 422 and bad_parent.body["detail"][0]["loc"] == ["body", "path_part_id"]
    bad_name = upload("/v1/documents/ingest", "a.txt", b"x", tenant.api_key, {**root, "name": "a/b"})
    assert bad_name.status == 422 and bad_name.body["detail"][0]["loc"] == ["body", "name"]
    nameless = upload("/v1/documents/ingest", "", b"x", tenant.api_key, root)
    assert nameless.status == 422 and nameless.body["detail"][0]["loc"] == ["body", "name"]
    document = create_document(tenant.root_path_part_id, "doc.md", tenant.api_key)
    under_document = upload("/v1/documents/ingest", "a.txt", b"x", tenant.api_key,
                            {"path_part_id": document["path_part_id"]})
    assert under_document.status == 404
    as_json = call_api("POST", "/v1/documents/ingest", root, tenant.api_key)
    assert as_json.status == 415 and "multipart/form-data" in as_json.body["detail"]
    multipart_elsewhere = upload("/v1/folders", "a.txt", b"x", tenant.api_key, root)
    assert multipart_elsewhere.status == 415
    no_boundary = call_api("POST", "/v1/documents/ingest", api_key=tenant.api_key,
                           headers={"content-type": "multipart/form-data"}, raw_body=b"--x--")
    assert no_boundary.status == 415 and "boundary" in no_boundary.body["detail"]
    too_large = upload("/v1/documents/ingest", "big.bin", b"\0" * (MAX_UPLOAD_BYTES + 1), tenant.api_key, root)
    assert too_large.status == 413 and str(MAX_UPLOAD_BYTES) in too_large.body["detail"]
    four_mib = documents.ingest(tenant.root_path_part_id, "big.bin", b"\0" * (4 * 1024 * 1024), tenant.api_key)
    assert documents.finished(four_mib["workflow_id"], tenant.api_key)["status"] == "failed"
    duplicate = upload("/v1/documents/ingest", "big.bin", b"again", tenant.api_key, root)
    assert duplicate.status == 409
    listed = boto3.client("s3").list_object_versions(Bucket=aws_env["DOCUMENTS_BUCKET"])
    assert len(listed.get("Versions", [])) == 1, "the refused upload's file was removed again"


def test_user_sees_exactly_the_ingestions_it_may_read(tenant: CreatedTenant, member: CreatedUser,
                                                      other_tenant: CreatedTenant,
                                                      grant: Callable[[str, str, str], None]) -> None:
    shared = create_folder(tenant.root_path_part_id, "shared", tenant.api_key)
    private = create_folder(tenant.root_path_part_id, "private", tenant.api_key)
    visible = documents.ingest(shared["path_part_id"], "a.md", documents.markdown(1), tenant.api_key)
    hidden = documents.ingest(private["path_part_id"], "b.md", documents.markdown(1), tenant.api_key)
    for created in (visible, hidden):
        documents.finished(created["workflow_id"], tenant.api_key)

    def listed(api_key: str) -> list[str]:
        page = call_api("GET", "/v1/workflows/document_versions", api_key=api_key).body
        return [i.workflow_id for i in PaginatedResponseWorkflowSummaryResponse.from_dict(page).items]

    assert listed(member.api_key) == []
    assert call_api("GET", f"/v1/workflows/document_versions/{visible['workflow_id']}",
                    api_key=member.api_key).status == 404
    grant(member.user_id, shared["path_part_id"], "READ_ONLY")
    assert listed(member.api_key) == [visible["workflow_id"]]
    assert sorted(listed(tenant.api_key)) == sorted([visible["workflow_id"], hidden["workflow_id"]])
    for method, path in (("GET", f"/v1/workflows/document_versions/{hidden['workflow_id']}"),
                         ("GET", f"/v1/workflows/{hidden['workflow_id']}"),
                         ("POST", f"/v1/workflows/document_versions/{hidden['workflow_id']}"),
                         ("DELETE", f"/v1/workflows/{hidden['workflow_id']}")):
        assert call_api(method, path, api_key=member.api_key).status == 404, path
    assert call_api("GET", f"/v1/workflows/document_versions/{visible['workflow_id']}",
                    api_key=member.api_key).status == 200
    for method, path in (("POST", f"/v1/workflows/document_versions/{visible['workflow_id']}"),
                         ("DELETE", f"/v1/workflows/{visible['workflow_id']}")):
        assert call_api(method, path, api_key=member.api_key).status == 403, path
    readonly_upload = upload("/v1/documents/ingest", "c.md", b"# c", member.api_key,
                             {"path_part_id": shared["path_part_id"]})
    assert readonly_upload.status == 403

    assert listed(other_tenant.api_key) == []
    for method, path in (("GET", f"/v1/workflows/document_versions/{visible['workflow_id']}"),
                         ("POST", f"/v1/workflows/document_versions/{visible['workflow_id']}"),
                         ("GET", f"/v1/workflows/{visible['workflow_id']}"),
                         ("DELETE", f"/v1/workflows/{visible['workflow_id']}")):
        assert call_api(method, path, api_key=other_tenant.api_key).status == 404, path
    stranger_upload = upload(f"/v1/documents/{visible['document_id']}/ingest", "x.md", b"# x",
                             other_tenant.api_key)
    assert stranger_upload.status == 404


def test_user_with_write_access_uploads_and_reruns(tenant: CreatedTenant, member: CreatedUser,
                                                   grant: Callable[[str, str, str], None]) -> None:
    team = create_folder(tenant.root_path_part_id, "team", tenant.api_key)
    grant(member.user_id, team["path_part_id"], "READ_WRITE")
    created = documents.ingest(team["path_part_id"], "plan.txt", documents.text(), member.api_key)
    documents.finished(created["workflow_id"], member.api_key)
    rerun = call_api("POST", f"/v1/workflows/document_versions/{created['workflow_id']}", api_key=member.api_key)
    assert rerun.status == 200
    assert documents.finished(created["workflow_id"], member.api_key)["status"] == "completed"


def test_list_pagination_and_unknown_workflow_ids(tenant: CreatedTenant) -> None:
    created = [documents.ingest(tenant.root_path_part_id, f"n{i}.txt", documents.text(1), tenant.api_key)
               for i in range(3)]
    for item in created:
        documents.finished(item["workflow_id"], tenant.api_key)
    newest_first = [c["workflow_id"] for c in reversed(created)]
    path = "/v1/workflows/document_versions"
    page = call_api("GET", f"{path}?limit=2&offset=1", api_key=tenant.api_key).body
    assert [i["workflow_id"] for i in page["items"]] == newest_first[1:] and page["total"] == 3
    by_page = call_api("GET", f"{path}?page=2&page_size=2", api_key=tenant.api_key).body
    assert [i["workflow_id"] for i in by_page["items"]] == newest_first[2:]
    assert (by_page["limit"], by_page["offset"]) == (2, 2)
    for query in ("page=0", "page_size=101", "limit=0", "offset=-1"):
        assert call_api("GET", f"{path}?{query}", api_key=tenant.api_key).status == 422, query
    for bad in ("ingest-not-a-uuid", f"run-{created[0]['document_version_id']}", "whatever"):
        assert call_api("GET", f"{path}/{bad}", api_key=tenant.api_key).status == 404, bad
        assert call_api("POST", f"{path}/{bad}", api_key=tenant.api_key).status == 404, bad
    assert call_api("GET", "/v1/workflows/ingest-not-a-uuid", api_key=tenant.api_key).status == 404
    # The collection is no workflow id, whatever the method.
    for method in ("DELETE", "OPTIONS"):
        refused = call_api(method, path, api_key=tenant.api_key)
        assert (refused.status, refused.headers.get("Allow")) == (405, "GET"), method
    traced = call_api("TRACE", "/v1/documents/ingest", api_key=tenant.api_key,
                      headers={"content-type": "multipart/form-data; boundary=x"}, raw_body=b"--x--\r\n")
    assert (traced.status, traced.headers.get("Allow")) == (405, "POST")
    assert call_api("GET", "/v1/documents/ingest", api_key=tenant.api_key).status == 405
