"""Uploads, ingestion workflows and the knowledge tree through the local stack with the `ksapi` SDK."""

from __future__ import annotations

import time
import uuid

import ksapi
import pytest
from ksapi.exceptions import ApiException

from tests import documents
from tests.e2e.conftest import LocalStack
from tests.e2e.test_local_stack_sdk import _client

pytestmark = pytest.mark.e2e


def _finished(client: ksapi.ApiClient, workflow_id: str) -> ksapi.WorkflowDetailResponse:
    workflows = ksapi.WorkflowsApi(client)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        detail = workflows.get_dv_workflow(workflow_id)
        if detail.status not in ("pending", "processing") and detail.temporal_status != "RUNNING":
            return detail
        time.sleep(0.3)
    raise AssertionError("ingestion did not finish")


def _status(call: object) -> int:
    with pytest.raises(ApiException) as caught:
        call()  # type: ignore[operator]
    return int(caught.value.status)


def test_upload_ingest_rerun_list_and_delete(local_stack: LocalStack) -> None:
    owner = _client(local_stack, local_stack.credentials["api_key"])
    folders, docs, workflows = ksapi.FoldersApi(owner), ksapi.DocumentsApi(owner), ksapi.WorkflowsApi(owner)
    folder = folders.create_folder(ksapi.CreateFolderRequest(name=f"library-{uuid.uuid4().hex[:8]}",
                                                             parent_path_part_id=local_stack.credentials[
                                                                 "root_path_part_id"]))
    uploads = {"report.pdf": documents.pdf(), "letter.docx": documents.docx(), "stock.csv": documents.csv_file()}
    created = {name: docs.ingest_document(file=(name, data), path_part_id=folder.path_part_id)
               for name, data in uploads.items()}
    finals = {name: _finished(owner, response.workflow_id) for name, response in created.items()}
    for name, final in finals.items():
        assert final.status == "completed" and final.chunks_processed and final.error is None, (name, final)

    pdf = created["report.pdf"]
    assert workflows.dv_workflow_rerun(pdf.workflow_id).action == "rerun"
    again = _finished(owner, pdf.workflow_id)
    assert again.status == "completed" and again.chunks_processed == finals["report.pdf"].chunks_processed
    assert again.run_id.endswith("-2")
    assert _status(lambda: workflows.cancel_temporal_workflow(pdf.workflow_id)) == 409

    listed = workflows.list_dv_workflows(limit=100)
    assert {r.workflow_id for r in created.values()} <= {i.workflow_id for i in listed.items}
    version = ksapi.DocumentVersionsApi(owner).get_document_version(pdf.document_version_id)
    assert version.materialized_path == f"{folder.materialized_path}/report.pdf/v0"
    contents = folders.list_folder_contents(folder.id, limit=10)
    assert sorted(i.actual_instance.name for i in contents.items) == sorted(uploads)
    assert docs.list_documents(parent_path_part_id=folder.path_part_id).total == 3
    assert ksapi.PathPartsApi(owner).list_path_parts(parent_path_id=folder.path_part_id, max_depth=2).total == 6

    stranger = _client(local_stack, local_stack.admin("create-tenant", "--name", "Other")["api_key"])
    assert ksapi.WorkflowsApi(stranger).list_dv_workflows().total == 0
    assert _status(lambda: ksapi.WorkflowsApi(stranger).get_dv_workflow(pdf.workflow_id)) == 404

    broken = docs.ingest_document(file=("broken.pdf", documents.corrupt_pdf()), path_part_id=folder.path_part_id,
                                  name="broken.pdf")
    failed = _finished(owner, broken.workflow_id)
    assert failed.status == "failed" and failed.error.startswith("The PDF could not be read")

    docs.delete_document(pdf.document_id)
    assert _status(lambda: docs.get_document(pdf.document_id)) == 404
    folders.delete_folder(folder.id)
    assert _status(lambda: folders.get_folder(folder.id)) == 404
    assert _status(lambda: workflows.get_dv_workflow(created["letter.docx"].workflow_id)) == 404
