"""Large files through the local stack: a 200 MB text file and a 1,000-page PDF, uploaded straight to its S3
with curl, ingest completely, range by range.

Marked `long` (tens of minutes on moto; not in `make test`):
`.venv/bin/python -m pytest -m long tests/e2e/test_large_files_sdk.py`. `LARGE_TEXT_MB` sets the text's size.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import ksapi
import pytest

from ksflow.ingestion import chunking, extract
from ksflow.ingestion.extract import FileFormat
from tests import documents
from tests.e2e.conftest import LocalStack
from tests.e2e.test_direct_uploads_sdk import _post
from tests.e2e.test_local_stack_sdk import _client

pytestmark = [pytest.mark.e2e, pytest.mark.long,
              pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")]

TEXT_MB = int(os.environ.get("LARGE_TEXT_MB", "200"))


def _large_text(path: Path, megabytes: int) -> None:
    """Paragraphs of about 80 bytes with 2-byte characters, written without holding the file in memory."""
    with path.open("w", encoding="utf-8") as file:
        record = 0
        while file.tell() < megabytes << 20:
            file.write("".join(f"Record {record + i}: invoices are kept for seven years, « sans exception ».\n\n"
                               for i in range(10_000)))
            record += 10_000


def _upload(stack: LocalStack, folder_id: str, file: Path, content_type: str) -> dict[str, str]:
    """Ask for an upload, curl the file to its one part URL, complete it: the ingestion starts."""
    status, upload = _post(stack, "/v1/documents/uploads", {
        "name": file.name, "path_part_id": folder_id, "size_bytes": file.stat().st_size, "content_type": content_type})
    assert status == 201 and len(upload["parts"]) == 1, upload
    put = subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{http_code}", "--upload-file", str(file),
                          upload["parts"][0]["url"]], capture_output=True, text=True, timeout=600, check=False)
    assert put.stdout == "200", put.stderr
    status, done = _post(stack, f"/v1/documents/uploads/{upload['upload_id']}/complete", None)
    assert status == 201, done
    return dict(done)


def _ingested(client: ksapi.ApiClient, workflow_id: str, timeout: float) -> Any:
    workflows = ksapi.WorkflowsApi(client)
    deadline = time.monotonic() + timeout
    while (detail := workflows.get_dv_workflow(workflow_id)).status in ("pending", "processing"):
        assert time.monotonic() < deadline, f"ingestion not finished: {detail.last_activity}"
        time.sleep(5)
    return detail


def _last_chunks(client: ksapi.ApiClient, version_id: str, total: int) -> list[str]:
    page = ksapi.DocumentVersionsApi(client).get_document_version_contents(version_id, limit=2, offset=total - 2)
    assert page.total == total
    return [item.actual_instance.content for item in page.items]


def _folder(stack: LocalStack, client: ksapi.ApiClient) -> str:
    folder = ksapi.FoldersApi(client).create_folder(ksapi.CreateFolderRequest(
        name=f"large-{uuid.uuid4().hex[:8]}", parent_path_part_id=stack.credentials["root_path_part_id"]))
    return str(folder.path_part_id)


def test_a_200_mb_text_file_ingests_completely(local_stack: LocalStack, tmp_path: Path) -> None:
    owner = _client(local_stack, local_stack.credentials["api_key"])
    file = tmp_path / "ledger.txt"
    _large_text(file, TEXT_MB)
    done = _upload(local_stack, _folder(local_stack, owner), file, "text/plain")
    expected = chunking.split(file.read_text(encoding="utf-8"))
    detail = _ingested(owner, done["workflow_id"], timeout=4 * 3600)
    assert (detail.status, detail.chunks_processed, detail.error) == ("completed", len(expected), None)
    assert _last_chunks(owner, done["document_version_id"], len(expected)) == [c.text for c in expected[-2:]]


def test_a_thousand_page_pdf_ingests_completely(local_stack: LocalStack, tmp_path: Path) -> None:
    owner = _client(local_stack, local_stack.credentials["api_key"])
    file = tmp_path / "archive.pdf"
    file.write_bytes(documents.pdf(pages=1000))
    done = _upload(local_stack, _folder(local_stack, owner), file, "application/pdf")
    expected = chunking.split(extract.extract(file.read_bytes(), FileFormat.PDF))
    detail = _ingested(owner, done["workflow_id"], timeout=3600)
    assert (detail.status, detail.chunks_processed, detail.error) == ("completed", len(expected), None)
    assert _last_chunks(owner, done["document_version_id"], len(expected)) == [c.text for c in expected[-2:]]
