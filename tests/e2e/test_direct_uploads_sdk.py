"""A direct upload through the local stack: the part URL points at its S3 server, and curl PUTs the file there."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import ksapi
import pytest

from tests import documents
from tests.e2e.conftest import LocalStack
from tests.e2e.test_local_stack_sdk import _client

pytestmark = pytest.mark.e2e


def _post(stack: LocalStack, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
    request = urllib.request.Request(f"{stack.url}{path}", data=json.dumps(body).encode() if body else None,
                                     method="POST", headers={"Authorization": f"Bearer {stack.credentials['api_key']}",
                                                             "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.loads(response.read())


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_puts_a_file_to_the_part_url_and_the_document_ingests(local_stack: LocalStack, tmp_path: Path) -> None:
    owner = _client(local_stack, local_stack.credentials["api_key"])
    folder = ksapi.FoldersApi(owner).create_folder(ksapi.CreateFolderRequest(
        name=f"uploads-{uuid.uuid4().hex[:8]}", parent_path_part_id=local_stack.credentials["root_path_part_id"]))
    file = tmp_path / "policy.txt"
    file.write_bytes(documents.text(4000))  # 300 KB
    status, upload = _post(local_stack, "/v1/documents/uploads", {
        "name": "policy.txt", "path_part_id": str(folder.path_part_id), "size_bytes": file.stat().st_size,
        "content_type": "text/plain"})
    assert status == 201 and len(upload["parts"]) == 1
    url = upload["parts"][0]["url"]
    assert url.startswith("http://127.0.0.1:")  # the local stack's own S3, not AWS
    put = subprocess.run(["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{http_code}", "--upload-file", str(file),
                          url], capture_output=True, text=True, timeout=60, check=False)
    assert put.stdout == "200", put.stderr
    status, done = _post(local_stack, f"/v1/documents/uploads/{upload['upload_id']}/complete", None)
    assert status == 201

    workflows = ksapi.WorkflowsApi(owner)
    deadline = time.monotonic() + 60
    while (detail := workflows.get_dv_workflow(done["workflow_id"])).status in ("pending", "processing"):
        assert time.monotonic() < deadline, "ingestion did not finish"
        time.sleep(0.3)
    assert detail.status == "completed" and detail.chunks_processed
    document = ksapi.DocumentsApi(owner).get_document(done["document_id"])
    assert document.name == "policy.txt"
    link = document.active_version.asset_s3_url
    assert link is not None
    with urllib.request.urlopen(link, timeout=30) as download:
        assert download.read() == file.read_bytes()
