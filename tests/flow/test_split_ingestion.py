"""Files split across invocations, through the real ingestion state machine in moto: range after range,
cancel between ranges, reruns, chunks of the first layout, deletes."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from ksflow import aws
from ksflow.identity.models import CreatedTenant
from ksflow.ingestion import chunking, extract, pipeline, store
from ksflow.ingestion.extract import FileFormat
from ksflow.local import lambda_runtime
from tests import documents
from tests.conftest import call_api, wait_for


@pytest.fixture
def tiny_ranges(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_RANGE_PAGES", "2")
    monkeypatch.setenv("INGEST_RANGE_BYTES", "20000")
    monkeypatch.setenv("INGEST_BLOCK_BYTES", "4096")


def _states(aws_env: dict[str, str], execution_name: str) -> list[str]:
    client = boto3.client("stepfunctions")
    arn = aws_env["INGESTION_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:") + ":" + execution_name
    wait_for(lambda: client.describe_execution(executionArn=arn)["status"] != "RUNNING")
    events = client.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]


def _stored(tenant: CreatedTenant, version_id: str) -> list[tuple[int, str, int]]:
    return [(int(c["index"]), str(c["text"]), int(c["attempt"]))
            for c in store.list_chunks(tenant.tenant_id, version_id)]


def _listed(tenant: CreatedTenant, version_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = call_api("GET", f"/v1/document_versions/{version_id}/contents?content_type=CHUNK&limit=70"
                        f"&offset={len(items)}", api_key=tenant.api_key).body
        items += page["items"]
        if len(items) >= page["total"]:
            return items


def _text_file() -> str:
    return "".join(f"Clause {i}. Records « é » are kept for seven years 🙂. " + ("\n\n" if i % 5 == 4 else "")
                   for i in range(2500))


def test_a_text_file_is_read_range_after_range(aws_env: dict[str, str], tenant: CreatedTenant,
                                               tiny_ranges: None) -> None:
    text = _text_file()
    lambda_runtime.invocations.clear()
    created = documents.ingest(tenant.root_path_part_id, "records.txt", text.encode(), tenant.api_key)
    final = documents.finished(created["workflow_id"], tenant.api_key, timeout=60)
    expected = chunking.split(text)
    assert (final["status"], final["chunks_processed"]) == ("completed", len(expected)), final
    ranges_read = len(text.encode()) // 20000
    assert lambda_runtime.invocations["ksflow-Ingest"] >= ranges_read
    states = _states(aws_env, final["run_id"])
    assert states.count("ExtractChunkAndStore") == lambda_runtime.invocations["ksflow-Ingest"]
    assert states[-2:] == ["MoreOfTheFile", "Done"]
    # The same chunks as one pass over the file, each once, in order, through the API too.
    assert _stored(tenant, created["document_version_id"]) == [(c.index, c.text, 1) for c in expected]
    listed = _listed(tenant, created["document_version_id"])
    assert [item["content"] for item in listed] == [c.text for c in expected]
    assert len(listed) > 100
    middle = call_api("GET", f"/v1/chunks/{listed[100]['path_part_id']}", api_key=tenant.api_key).body
    assert (middle["prev_sibling_path_id"], middle["next_sibling_path_id"]) == (
        listed[99]["path_part_id"], listed[101]["path_part_id"])


def test_a_pdf_is_read_a_few_pages_at_a_time(aws_env: dict[str, str], tenant: CreatedTenant,
                                             tiny_ranges: None) -> None:
    data = documents.pdf(pages=9)
    lambda_runtime.invocations.clear()
    created = documents.ingest(tenant.root_path_part_id, "minutes.pdf", data, tenant.api_key)
    final = documents.finished(created["workflow_id"], tenant.api_key, timeout=60)
    expected = chunking.split(extract.extract(data, FileFormat.PDF))
    assert (final["status"], final["chunks_processed"]) == ("completed", len(expected)), final
    assert lambda_runtime.invocations["ksflow-Ingest"] == 5  # pages 1-2, 3-4, 5-6, 7-8, 9
    assert _stored(tenant, created["document_version_id"]) == [(c.index, c.text, 1) for c in expected]


@pytest.fixture
def second_range_held(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The second range of the first attempt waits for the test; its result is recorded."""
    state: dict[str, Any] = {"reached": threading.Event(), "release": threading.Event()}
    real = pipeline.ingest

    def holding(tenant_id: str, version_id: str, execution_name: str, cursor: Any = None, *rest: Any) -> Any:
        if cursor is not None and execution_name.endswith("-1") and "result" not in state:
            state["reached"].set()
            state["release"].wait(30)
            state["result"] = real(tenant_id, version_id, execution_name, cursor, *rest)
            return state["result"]
        return real(tenant_id, version_id, execution_name, cursor, *rest)

    monkeypatch.setattr(pipeline, "ingest", holding)
    yield state
    state["release"].set()


def test_a_cancel_between_ranges_stops_the_ingestion_there(aws_env: dict[str, str], tenant: CreatedTenant,
                                                           tiny_ranges: None,
                                                           second_range_held: dict[str, Any]) -> None:
    created = documents.ingest(tenant.root_path_part_id, "records.txt", _text_file().encode(), tenant.api_key)
    workflow_id, version_id = created["workflow_id"], created["document_version_id"]
    assert second_range_held["reached"].wait(30)
    first_range = _stored(tenant, version_id)
    assert first_range, "the first range stored its chunks"
    assert call_api("DELETE", f"/v1/workflows/{workflow_id}", api_key=tenant.api_key).status == 200
    second_range_held["release"].set()
    final = documents.finished(workflow_id, tenant.api_key)
    assert (final["status"], final["chunks_processed"]) == ("cancelled", None)
    assert wait_for(lambda: second_range_held.get("result")) == {"status": "skipped", "chunks": None, "cursor": None}
    assert _stored(tenant, version_id) == first_range, "nothing was written after the cancel"
    assert call_api("GET", f"/v1/document_versions/{version_id}/contents?content_type=CHUNK",
                    api_key=tenant.api_key).body["total"] == 0


def test_a_rerun_of_a_split_ingestion_replaces_every_chunk_and_drops_a_longer_attempts(
        aws_env: dict[str, str], tenant: CreatedTenant, tiny_ranges: None) -> None:
    text = _text_file()
    created = documents.ingest(tenant.root_path_part_id, "records.txt", text.encode(), tenant.api_key)
    workflow_id, version_id = created["workflow_id"], created["document_version_id"]
    count = documents.finished(workflow_id, tenant.api_key, timeout=60)["chunks_processed"]
    first = store.get(tenant.tenant_id, version_id)
    assert first is not None and first.chunk_extent == count
    # Attempt 2 gets further than the file's end would allow (as if the chunking had changed), then fails.
    second = store.restart(first, f"{workflow_id}-2")
    assert second is not None and store.begin(tenant.tenant_id, version_id, f"{workflow_id}-2") is not None
    longer = store.ChunkWriter(store.get(tenant.tenant_id, version_id) or second)
    longer.write(chunking.Chunk(index=i, text=f"longer {i}", start=0, end=1) for i in range(count + 150))
    longer.flush()
    assert store.fail(tenant.tenant_id, version_id, f"{workflow_id}-2", "gave up")
    stale_ids = [c["chunk_id"] for c in store.list_chunks(tenant.tenant_id, version_id)[count:]]
    assert len(stale_ids) == 150

    assert call_api("POST", f"/v1/workflows/document_versions/{workflow_id}", api_key=tenant.api_key).status == 200
    third = documents.finished(workflow_id, tenant.api_key, timeout=60)
    assert (third["status"], third["run_id"], third["chunks_processed"]) == ("completed", f"{workflow_id}-3", count)
    assert _stored(tenant, version_id) == [(c.index, c.text, 3) for c in chunking.split(text)]
    assert all(store.locate_chunk(tenant.tenant_id, stale) is None for stale in stale_ids)
    final = store.get(tenant.tenant_id, version_id)
    assert final is not None and final.chunk_extent == count


def _first_layout(tenant: CreatedTenant, version_id: str, texts: list[str]) -> list[str]:
    """Chunks as ingestions completed before chunk partitions stored them, and the record they left."""
    table = aws.table(os.environ["TABLE_NAME"])
    ids = [store.chunk_id(version_id, "old-execution", i) for i in range(len(texts))]
    for index, (chunk_id, text) in enumerate(zip(ids, texts, strict=True)):
        table.put_item(Item={"pk": f"TENANT#{tenant.tenant_id}", "sk": f"CHUNK#{version_id}#{index:06d}",
                             "tenant_id": tenant.tenant_id, "document_version_id": version_id, "index": index,
                             "text": text, "start": 0, "end": len(text), "attempt": 1, "chunk_id": chunk_id,
                             "created_at": "2026-01-01T00:00:00Z"})
        table.put_item(Item={"pk": f"TENANT#{tenant.tenant_id}", "sk": f"CHUNKID#{chunk_id}",
                             "document_version_id": version_id, "index": index})
    table.update_item(Key=store.key(tenant.tenant_id, version_id),
                      UpdateExpression="SET chunks_processed = :n REMOVE chunk_layout, chunk_extent",
                      ExpressionAttributeValues={":n": len(texts)})
    return ids


def test_chunks_of_the_first_layout_are_served_until_a_rerun_replaces_them(
        aws_env: dict[str, str], tenant: CreatedTenant) -> None:
    created = documents.ingest(tenant.root_path_part_id, "notes.txt", documents.text(3), tenant.api_key)
    workflow_id, version_id = created["workflow_id"], created["document_version_id"]
    documents.finished(workflow_id, tenant.api_key)
    for item in store.list_chunks(tenant.tenant_id, version_id):  # as if ingested before chunk partitions
        aws.table(os.environ["TABLE_NAME"]).delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
    ids = _first_layout(tenant, version_id, ["old zero", "old one", "old two"])

    assert [item["content"] for item in _listed(tenant, version_id)] == ["old zero", "old one", "old two"]
    one = call_api("GET", f"/v1/chunks/{ids[1]}", api_key=tenant.api_key).body
    assert (one["content"], one["prev_sibling_path_id"], one["next_sibling_path_id"]) == ("old one", ids[0], ids[2])

    assert call_api("POST", f"/v1/workflows/document_versions/{workflow_id}", api_key=tenant.api_key).status == 200
    assert documents.finished(workflow_id, tenant.api_key)["status"] == "completed"
    assert [item["content"] for item in _listed(tenant, version_id)] == [(documents.SENTENCE * 3).strip()]
    assert call_api("GET", f"/v1/chunks/{ids[1]}", api_key=tenant.api_key).status == 404
    assert _stored(tenant, version_id) == [(0, (documents.SENTENCE * 3).strip(), 2)]


def test_deleting_a_document_removes_the_chunks_of_both_layouts(aws_env: dict[str, str], tenant: CreatedTenant,
                                                                tiny_ranges: None) -> None:
    created = documents.ingest(tenant.root_path_part_id, "records.txt", _text_file().encode(), tenant.api_key)
    version_id = created["document_version_id"]
    documents.finished(created["workflow_id"], tenant.api_key, timeout=60)
    first_layout = _first_layout(tenant, version_id, ["left by an earlier layout"])
    assert len(store.list_chunks(tenant.tenant_id, version_id)) > 100
    assert call_api("DELETE", f"/v1/documents/{created['document_id']}", api_key=tenant.api_key).status in (200, 204)
    assert store.list_chunks(tenant.tenant_id, version_id) == []
    assert store.locate_chunk(tenant.tenant_id, first_layout[0]) is None
    assert store.get(tenant.tenant_id, version_id) is None
