"""Large files through the ingestion state machine in moto: a 1,000-page PDF and a 200 MB text file.

Marked `long` (minutes; moto stores every chunk): `pytest -m long tests/flow/test_large_ingestion.py`.
`LARGE_TEXT_MB` sets the text file's size (200 by default).
"""

from __future__ import annotations

import os
import tracemalloc

import boto3
import pytest

from ksflow import aws
from ksflow.identity.models import CreatedTenant
from ksflow.ingestion import chunking, extract, ranges, store
from ksflow.ingestion.chunking import Chunk
from ksflow.ingestion.extract import FileFormat
from ksflow.local import lambda_runtime
from tests import documents
from tests.conftest import call_api

pytestmark = pytest.mark.long

TEXT_MB = int(os.environ.get("LARGE_TEXT_MB", "200"))
# What reading and chunking may hold at once, whatever the file's size (1 MiB blocks).
MEMORY_BOUND_MB = 32


def _stored_indexes(tenant: CreatedTenant, version_id: str) -> list[int]:
    return [int(c["index"]) for c in store.list_chunks(tenant.tenant_id, version_id)]


def test_a_thousand_page_pdf(aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    data = documents.pdf(pages=1000)
    lambda_runtime.invocations.clear()
    created = documents.ingest(tenant.root_path_part_id, "archive.pdf", data, tenant.api_key)
    final = documents.finished(created["workflow_id"], tenant.api_key, timeout=1800)
    expected = chunking.split(extract.extract(data, FileFormat.PDF))
    assert (final["status"], final["chunks_processed"]) == ("completed", len(expected)), final
    assert lambda_runtime.invocations["ksflow-Ingest"] >= 1000 // ranges.Limits.from_env().pages
    stored = store.list_chunks(tenant.tenant_id, created["document_version_id"])
    assert [c["text"] for c in stored] == [c.text for c in expected]
    assert "Page 1000." in stored[-1]["text"] or "Page 1000." in stored[-2]["text"]


def _large_text(megabytes: int) -> bytes:
    paragraphs = (f"Record {i}: invoices are kept for seven years and contracts for ten, « sans exception ».\n\n"
                  for i in range(megabytes * (1 << 20) // 80 + 1))
    return "".join(paragraphs).encode()[: megabytes << 20].rsplit(b" ", 1)[0]


class _Counted:
    def __init__(self) -> None:
        self.last = -1

    def __call__(self, chunks: object) -> None:
        for chunk in chunks:  # type: ignore[attr-defined]
            assert isinstance(chunk, Chunk) and chunk.index == self.last + 1
            self.last = chunk.index


def test_a_200_mb_text_file(aws_env: dict[str, str], tenant: CreatedTenant, monkeypatch: pytest.MonkeyPatch) -> None:
    created = documents.ingest(tenant.root_path_part_id, "ledger.txt", b"placeholder", tenant.api_key)
    workflow_id, version_id = created["workflow_id"], created["document_version_id"]
    documents.finished(workflow_id, tenant.api_key)
    ingestion = store.get(tenant.tenant_id, version_id)
    assert ingestion is not None
    data = _large_text(TEXT_MB)
    boto3.client("s3").put_object(Bucket=aws_env["DOCUMENTS_BUCKET"], Key=ingestion.object_key, Body=data)
    aws.table(aws_env["TABLE_NAME"]).update_item(Key=store.key(tenant.tenant_id, version_id),
                                                 UpdateExpression="SET #size = :s",
                                                 ExpressionAttributeNames={"#size": "size"},
                                                 ExpressionAttributeValues={":s": len(data)})
    del data

    # Reading and chunking the whole file, as the ranges do, holds a bounded amount of memory.
    counted = _Counted()
    tracemalloc.start()
    try:
        cursor: ranges.Cursor | None = ranges.Cursor()
        while cursor is not None:
            cursor = ranges.read_range(ingestion.object_key, FileFormat.PLAIN_TEXT, cursor,
                                       ranges.Limits(pages=1, bytes=16 << 20, block_bytes=1 << 20), counted,
                                       lambda: 900.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND_MB << 20, f"reading held {peak >> 20} MB"

    # Through the state machine: ranges of 16 MB, every chunk stored once, in order.
    monkeypatch.setenv("INGEST_RANGE_BYTES", str(16 << 20))
    lambda_runtime.invocations.clear()
    assert call_api("POST", f"/v1/workflows/document_versions/{workflow_id}", api_key=tenant.api_key).status == 200
    final = documents.finished(workflow_id, tenant.api_key, timeout=4 * 3600)
    assert (final["status"], final["chunks_processed"]) == ("completed", counted.last + 1), final
    assert lambda_runtime.invocations["ksflow-Ingest"] >= TEXT_MB // 16
    assert _stored_indexes(tenant, version_id) == list(range(counted.last + 1))
