"""A rerun right after a cancel: the cancelled attempt, still running, can no longer write anything."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ksflow.identity.models import CreatedTenant
from ksflow.ingestion import chunking, failure, pipeline, store
from ksflow.ingestion.models import Activity, Ingestion
from tests import documents
from tests.conftest import call_api, wait_for


@dataclass
class Paused:
    """The first attempt of an ingestion, stopped after its last status check, just before it stores chunks."""

    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


@pytest.fixture
def paused(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Paused]:
    state = Paused()
    record_activity, ingest = store.record_activity, pipeline.ingest

    def pausing(tenant_id: str, version_id: str, execution_name: str, activity: Activity) -> bool:
        recorded = record_activity(tenant_id, version_id, execution_name, activity)
        if activity == Activity.STORE and execution_name.endswith("-1"):
            state.reached.set()
            state.release.wait(30)
        return recorded

    def recording(tenant_id: str, version_id: str, execution_name: str, *rest: Any) -> dict[str, Any]:
        state.results[execution_name] = ingest(tenant_id, version_id, execution_name, *rest)
        return state.results[execution_name]

    monkeypatch.setattr(store, "record_activity", pausing)
    monkeypatch.setattr(pipeline, "ingest", recording)
    yield state
    state.release.set()


def _stored_chunks(tenant: CreatedTenant, version_id: str) -> list[dict[str, Any]]:
    """Every chunk item of the version as the table holds it."""
    return store.list_chunks(tenant.tenant_id, version_id)


def _replace_chunks(ingestion: Ingestion, chunks: list[chunking.Chunk]) -> bool:
    """Write an attempt's chunks as its task does; False once it is fenced out."""
    writer = store.ChunkWriter(ingestion)
    try:
        writer.write(chunks)
        writer.finish(len(chunks))
    except store.Superseded:
        return False
    return True


def test_a_cancelled_attempt_writes_nothing_once_it_was_rerun(tenant: CreatedTenant, paused: Paused) -> None:
    created = documents.ingest(tenant.root_path_part_id, "policy.md", documents.markdown(8), tenant.api_key)
    workflow_id, version_id = created["workflow_id"], created["document_version_id"]
    assert paused.reached.wait(30)
    assert documents.detail(workflow_id, tenant.api_key)["last_activity"] == "store_chunks"

    assert call_api("DELETE", f"/v1/workflows/{workflow_id}", api_key=tenant.api_key).status == 200
    rerun = call_api("POST", f"/v1/workflows/document_versions/{workflow_id}", api_key=tenant.api_key)
    assert rerun.status == 200, rerun.body
    second = documents.finished(workflow_id, tenant.api_key)
    assert (second["status"], second["run_id"]) == ("completed", f"{workflow_id}-2")
    chunks = _stored_chunks(tenant, version_id)
    assert len(chunks) == second["chunks_processed"] > 1 and {c["attempt"] for c in chunks} == {2}

    # The cancelled attempt resumes where it stopped: it stores nothing and ends nothing.
    paused.release.set()
    assert wait_for(lambda: paused.results.get(f"{workflow_id}-1")) == {
        "status": "skipped", "chunks": None, "cursor": None}
    assert _stored_chunks(tenant, version_id) == chunks
    assert failure.record_failure(tenant.tenant_id, version_id, f"{workflow_id}-1", {"Error": "Late"}) is False
    after = documents.detail(workflow_id, tenant.api_key)
    assert (after["status"], after["run_id"], after["chunks_processed"], after["error"]) == (
        "completed", f"{workflow_id}-2", second["chunks_processed"], None)


def test_only_the_current_attempt_writes_while_two_are_inside_their_chunk_writes(tenant: CreatedTenant) -> None:
    created = documents.ingest(tenant.root_path_part_id, "notes.txt", documents.text(), tenant.api_key)
    workflow_id, version_id = created["workflow_id"], created["document_version_id"]
    assert documents.finished(workflow_id, tenant.api_key)["status"] == "completed"
    first = store.get(tenant.tenant_id, version_id)
    assert first is not None
    stale = first.model_copy(update={"status": "processing"})
    # Attempt 2 is processing (its execution is not started: this test plays both tasks).
    restarted = store.restart(first, f"{workflow_id}-2")
    assert restarted is not None
    current = store.begin(tenant.tenant_id, version_id, f"{workflow_id}-2")
    assert current is not None

    longer = chunking.split(documents.text(1500).decode())
    assert len(longer) > 100  # more than one transaction's worth
    assert _replace_chunks(stale, longer) is False
    assert {c["attempt"] for c in _stored_chunks(tenant, version_id)} == {1}
    assert _replace_chunks(current, longer) is True
    stored = _stored_chunks(tenant, version_id)
    assert [(c["index"], c["attempt"]) for c in stored] == [(i, 2) for i in range(len(longer))]

    assert store.fail(tenant.tenant_id, version_id, stale.execution_name, "late") is False
    assert store.complete(tenant.tenant_id, version_id, stale.execution_name, 1) is False
    assert store.complete(tenant.tenant_id, version_id, current.execution_name, len(longer)) is True
    final = documents.detail(workflow_id, tenant.api_key)
    assert (final["status"], final["run_id"], final["chunks_processed"]) == (
        "completed", f"{workflow_id}-2", len(longer))
