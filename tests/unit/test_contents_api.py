"""Reading what ingestion made of a document: a version's chunks, one chunk by id, a document's versions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from ksapi.models import (
    ChunkContentItem,
    ChunkResponse,
    PaginatedResponseAnnotatedUnionSectionContentItemChunkContentItemDiscriminator,
    PaginatedResponseDocumentVersionResponse,
)

from ksflow.identity.models import CreatedTenant, CreatedUser
from tests import documents
from tests.conftest import call_api, upload
from tests.unit.test_api_knowledge import create_document, create_folder


def _contents(version_id: str, api_key: str, **query: Any) -> Any:
    params = "&".join(f"{name}={value}" for name, value in query.items())
    return call_api("GET", f"/v1/document_versions/{version_id}/contents?{params}", api_key=api_key)


def _chunks(version_id: str, api_key: str, **query: Any) -> list[ChunkContentItem]:
    response = _contents(version_id, api_key, content_type="CHUNK", **query)
    assert response.status == 200, response.body
    page = PaginatedResponseAnnotatedUnionSectionContentItemChunkContentItemDiscriminator.from_dict(response.body)
    assert page is not None
    return [item.actual_instance for item in page.items]


def _all_chunks(version_id: str, api_key: str) -> list[ChunkContentItem]:
    return _chunks(version_id, api_key, limit=100)


@pytest.fixture
def policy(tenant: CreatedTenant) -> dict[str, Any]:
    """A markdown document in a folder of its own, ingested into several chunks."""
    folder = create_folder(tenant.root_path_part_id, "policies", tenant.api_key)
    created = documents.ingest(folder["path_part_id"], "policy.md", documents.markdown(8), tenant.api_key)
    final = documents.finished(created["workflow_id"], tenant.api_key)
    assert final["status"] == "completed" and final["chunks_processed"] >= 5, final
    return {**created, "folder": folder, "chunks": final["chunks_processed"]}


def test_contents_page_through_the_chunks_in_order(tenant: CreatedTenant, policy: dict[str, Any]) -> None:
    version_id = policy["document_version_id"]
    everything = _all_chunks(version_id, tenant.api_key)
    assert len(everything) == policy["chunks"]
    assert everything[0].content.startswith("# Policies\n\n## Section 0")
    assert [f"## Section {i}" in "".join(c.content for c in everything) for i in range(8)] == [True] * 8
    assert [c.name for c in everything] == [f"chunk-{i}" for i in range(len(everything))]
    version = call_api("GET", f"/v1/document_versions/{version_id}", api_key=tenant.api_key).body
    assert {(c.part_type, str(c.parent_path_id), c.depth) for c in everything} == {
        ("CHUNK", version["path_part_id"], 1)}
    assert everything[2].materialized_path == "/policies/policy.md/v0/chunk-2"

    pages = [_contents(version_id, tenant.api_key, content_type="CHUNK", limit=2, offset=offset).body
             for offset in range(0, len(everything), 2)]
    assert {(p["total"], p["limit"]) for p in pages} == {(len(everything), 2)}
    assert [item["metadata_obj_id"] for p in pages for item in p["items"]] == [
        str(c.metadata_obj_id) for c in everything]
    beyond = _contents(version_id, tenant.api_key, offset=len(everything)).body
    assert (beyond["items"], beyond["total"]) == ([], len(everything))
    # Without content_type both kinds are listed; there are no sections, so only chunks.
    assert _contents(version_id, tenant.api_key, limit=100).body["items"] == _contents(
        version_id, tenant.api_key, content_type="CHUNK", limit=100).body["items"]
    sections = _contents(version_id, tenant.api_key, content_type="SECTION").body
    assert (sections["items"], sections["total"]) == ([], 0)


def test_a_chunk_is_read_by_the_id_the_listing_gives(tenant: CreatedTenant, policy: dict[str, Any]) -> None:
    listed = _all_chunks(policy["document_version_id"], tenant.api_key)
    response = call_api("GET", f"/v1/chunks/{listed[1].metadata_obj_id}", api_key=tenant.api_key)
    assert response.status == 200, response.body
    chunk = ChunkResponse.from_dict(response.body)
    assert chunk is not None
    assert (chunk.id, chunk.content, chunk.chunk_type.value) == (listed[1].metadata_obj_id, listed[1].content, "TEXT")
    assert (chunk.prev_sibling_path_id, chunk.next_sibling_path_id) == (listed[0].path_part_id,
                                                                         listed[2].path_part_id)
    assert str(chunk.tenant_id) == tenant.tenant_id and chunk.document is None
    first = ChunkResponse.from_dict(call_api("GET", f"/v1/chunks/{listed[0].metadata_obj_id}",
                                             api_key=tenant.api_key).body)
    last = ChunkResponse.from_dict(call_api("GET", f"/v1/chunks/{listed[-1].metadata_obj_id}",
                                            api_key=tenant.api_key).body)
    assert first is not None and last is not None
    assert first.prev_sibling_path_id is None and last.next_sibling_path_id is None

    described = ChunkResponse.from_dict(call_api("GET", f"/v1/chunks/{listed[1].metadata_obj_id}?with_document=true",
                                                 api_key=tenant.api_key).body)
    assert described is not None and described.document is not None and described.document_version is not None
    assert (str(described.document.id), described.document.name, described.document.document_type.value) == (
        policy["document_id"], "policy.md", "PLAINTEXT")
    assert (str(described.document_version.id), described.document_version.name) == (
        policy["document_version_id"], "v0")
    assert call_api("GET", f"/v1/chunks/{uuid.uuid4()}", api_key=tenant.api_key).status == 404


def test_chunk_ids_are_stable_across_reads_and_new_after_a_rerun(tenant: CreatedTenant,
                                                                 policy: dict[str, Any]) -> None:
    version_id = policy["document_version_id"]
    before = _all_chunks(version_id, tenant.api_key)
    assert [c.metadata_obj_id for c in _all_chunks(version_id, tenant.api_key)] == [
        c.metadata_obj_id for c in before]

    rerun = call_api("POST", f"/v1/workflows/document_versions/{policy['workflow_id']}", api_key=tenant.api_key)
    assert rerun.status == 200, rerun.body
    assert documents.finished(policy["workflow_id"], tenant.api_key)["status"] == "completed"
    after = _all_chunks(version_id, tenant.api_key)
    assert [c.content for c in after] == [c.content for c in before]
    assert not {c.metadata_obj_id for c in after} & {c.metadata_obj_id for c in before}
    assert call_api("GET", f"/v1/chunks/{before[0].metadata_obj_id}", api_key=tenant.api_key).status == 404
    assert call_api("GET", f"/v1/chunks/{after[0].metadata_obj_id}", api_key=tenant.api_key).status == 200


def test_a_version_without_a_completed_ingestion_has_no_chunks(tenant: CreatedTenant) -> None:
    document = create_document(tenant.root_path_part_id, "empty.md", tenant.api_key)
    page = _contents(document["active_version_id"], tenant.api_key).body
    assert (page["items"], page["total"]) == ([], 0)
    broken = documents.ingest(tenant.root_path_part_id, "broken.pdf", documents.corrupt_pdf(), tenant.api_key)
    assert documents.finished(broken["workflow_id"], tenant.api_key)["status"] == "failed"
    assert _contents(broken["document_version_id"], tenant.api_key).body["total"] == 0


def test_a_documents_versions_are_listed_oldest_first(tenant: CreatedTenant, policy: dict[str, Any]) -> None:
    document_id = policy["document_id"]
    for _ in range(2):
        again = upload(f"/v1/documents/{document_id}/ingest", "policy.md", documents.markdown(2), tenant.api_key)
        assert again.status == 201, again.body
        documents.finished(again.body["workflow_id"], tenant.api_key)
    response = call_api("GET", f"/v1/document_versions?document_id={document_id}", api_key=tenant.api_key)
    assert response.status == 200, response.body
    listed = PaginatedResponseDocumentVersionResponse.from_dict(response.body)
    assert listed is not None
    assert ([v.name for v in listed.items], [v.version for v in listed.items], listed.total) == (
        ["v0", "v1", "v2"], [0, 1, 2], 3)
    assert str(listed.items[0].id) == policy["document_version_id"]
    second = call_api("GET", f"/v1/document_versions?document_id={document_id}&limit=1&offset=1",
                      api_key=tenant.api_key).body
    assert ([v["name"] for v in second["items"]], second["total"], second["limit"]) == (["v1"], 3, 1)
    assert call_api("GET", "/v1/document_versions", api_key=tenant.api_key).status == 422


def _reads(policy: dict[str, Any], chunk_id: str) -> dict[str, str]:
    return {"contents": f"/v1/document_versions/{policy['document_version_id']}/contents",
            "chunk": f"/v1/chunks/{chunk_id}",
            "versions": f"/v1/document_versions?document_id={policy['document_id']}"}


def test_a_user_reads_only_through_grants(tenant: CreatedTenant, member: CreatedUser, policy: dict[str, Any],
                                          grant: Callable[[str, str, str], None]) -> None:
    chunk_id = str(_all_chunks(policy["document_version_id"], tenant.api_key)[0].metadata_obj_id)
    reads = _reads(policy, chunk_id)
    assert {name: call_api("GET", path, api_key=member.api_key).status for name, path in reads.items()} == {
        name: 404 for name in reads}
    other = create_folder(tenant.root_path_part_id, "elsewhere", tenant.api_key)
    grant(member.user_id, other["path_part_id"], "READ_WRITE")
    assert {call_api("GET", path, api_key=member.api_key).status for path in reads.values()} == {404}
    grant(member.user_id, policy["folder"]["path_part_id"], "READ_ONLY")
    assert {call_api("GET", path, api_key=member.api_key).status for path in reads.values()} == {200}
    assert [c.metadata_obj_id for c in _all_chunks(policy["document_version_id"], member.api_key)] == [
        c.metadata_obj_id for c in _all_chunks(policy["document_version_id"], tenant.api_key)]


def test_another_tenant_sees_nothing_and_malformed_ids_are_422(tenant: CreatedTenant, other_tenant: CreatedTenant,
                                                               policy: dict[str, Any]) -> None:
    chunk_id = str(_all_chunks(policy["document_version_id"], tenant.api_key)[0].metadata_obj_id)
    reads = _reads(policy, chunk_id)
    assert {call_api("GET", path, api_key=other_tenant.api_key).status for path in reads.values()} == {404}
    for path in ("/v1/document_versions/not-a-uuid/contents", "/v1/chunks/not-a-uuid",
                 "/v1/document_versions?document_id=not-a-uuid",
                 f"/v1/document_versions/{policy['document_version_id']}/contents?content_type=PARAGRAPH",
                 f"/v1/document_versions/{policy['document_version_id']}/contents?limit=101"):
        response = call_api("GET", path, api_key=tenant.api_key)
        assert response.status == 422, (path, response.body)
    section = _contents(policy["document_version_id"], tenant.api_key, section_id=uuid.uuid4())
    assert section.status == 404


def test_a_deleted_documents_chunks_are_gone(tenant: CreatedTenant, policy: dict[str, Any]) -> None:
    chunk_id = str(_all_chunks(policy["document_version_id"], tenant.api_key)[0].metadata_obj_id)
    assert call_api("DELETE", f"/v1/documents/{policy['document_id']}", api_key=tenant.api_key).status == 204
    for path in _reads(policy, chunk_id).values():
        assert call_api("GET", path, api_key=tenant.api_key).status == 404
