"""Listings of a part's children read about one page of listing entries, in the order the whole set sorts in.

The expected order is the in-memory sort of every child (what listings did before entries existed).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from boto3.dynamodb.conditions import Key

from ksflow import aws
from ksflow.identity import store as identity
from ksflow.identity.models import CreatedTenant
from ksflow.knowledge import store, tree
from ksflow.knowledge.models import PartType, PathPart
from ksflow.knowledge.tree import SortOrder
from tests import documents
from tests.conftest import call_api, upload
from tests.unit.test_api_knowledge import create_document, create_folder

# 3-byte characters: 170 of them and one more byte fill 511 of the name key's 512 bytes, so a name that goes
# on with a 2-byte character is cut there: its key sorts before the keys of `ab` and `ac`, which precede it by name.
CJK = "中" * 170
# A 4-byte character (MATHEMATICAL DOUBLE-STRUCK CAPITAL A): 128 of them fill the name key's 512 bytes.
WIDE = "\U0001d538"
NAMES = {
    PartType.FOLDER: ["report", "Report", "REPORT", "rEport", "repOrt", "reporT", "b", "Zeta", "zeta2",
                      WIDE + "lpha", WIDE, "😀 smile", WIDE * 128 + "z", WIDE * 128 + "A", WIDE * 128,
                      CJK + "aé", CJK + "aà", CJK + "aö", CJK + "ab", CJK + "ac"],
    PartType.DOCUMENT: ["report.md", "a", "A", "Ä", "ß", "ss", WIDE * 128 + "b", WIDE * 128 + "Y", CJK + "aé.md",
                        CJK + "a", CJK + "aa", "😀"],
}
ENDPOINTS = {
    "contents": ("/v1/folders/{folder_id}/contents", {PartType.FOLDER, PartType.DOCUMENT}),
    "folders": ("/v1/folders?parent_path_part_id={parent_id}", {PartType.FOLDER}),
    "documents": ("/v1/documents?parent_path_part_id={parent_id}", {PartType.DOCUMENT}),
    "path-parts": ("/v1/path-parts?parent_path_id={parent_id}", None),
}


@pytest.fixture
def mixed(tenant: CreatedTenant) -> dict[str, Any]:
    """A folder holding folders and documents with awkward names; two documents have a newer version."""
    folder = create_folder(tenant.root_path_part_id, "mixed", tenant.api_key)
    made = {name: create_folder(folder["path_part_id"], name, tenant.api_key) for name in NAMES[PartType.FOLDER]}
    made |= {name: create_document(folder["path_part_id"], name, tenant.api_key) for name in NAMES[PartType.DOCUMENT]}
    for name in ("a", "report.md"):
        assert upload(f"/v1/documents/{made[name]['id']}/ingest", "v1.txt", documents.text(1),
                      tenant.api_key).status == 201
    return folder


def _part(tenant: CreatedTenant, path_part_id: str) -> PathPart:
    part = store.get_path_part(tenant.tenant_id, path_part_id)
    assert part is not None
    return part


def _expected(parent: PathPart, order: SortOrder, kinds: set[PartType] | None) -> list[str]:
    parts = [p for p in store.descendants(parent, 1) if kinds is None or p.part_type in kinds]
    return [p.path_part_id for p in tree.sort(parts, order)]


def _walk(path: str, api_key: str, limit: int) -> tuple[list[str], int]:
    """Every page of a listing, `limit` at a time: the ids in order, and the total each page reports."""
    ids: list[str] = []
    totals: set[int] = set()
    offset = 0
    while True:
        body = call_api("GET", f"{path}&limit={limit}&offset={offset}", api_key=api_key).body
        totals.add(body["total"])
        ids += [str(item["path_part_id"]) for item in body["items"]]
        offset += limit
        if not body["items"]:
            assert len(totals) == 1, totals
            return ids, totals.pop()


@pytest.mark.parametrize("order", list(SortOrder))
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_pages_follow_the_order_of_the_whole_set(tenant: CreatedTenant, mixed: dict[str, Any], order: SortOrder,
                                                 endpoint: str) -> None:
    template, kinds = ENDPOINTS[endpoint]
    path = template.format(folder_id=mixed["id"], parent_id=mixed["path_part_id"])
    separator = "&" if "?" in path else "?"
    expected = _expected(_part(tenant, mixed["path_part_id"]), order, kinds)
    for limit in (1, 4, 100):
        assert _walk(f"{path}{separator}sort_order={order.value}", tenant.api_key, limit) == (expected, len(expected))


def test_versions_of_a_document_are_listed_and_counted(tenant: CreatedTenant) -> None:
    document = create_document(tenant.root_path_part_id, "notes.md", tenant.api_key)
    for number in (1, 2):
        assert upload(f"/v1/documents/{document['id']}/ingest", f"v{number}.txt", documents.text(1),
                      tenant.api_key).status == 201
    body = call_api("GET", f"/v1/path-parts?parent_path_id={document['path_part_id']}&sort_order=UPDATED_AT",
                    api_key=tenant.api_key).body
    assert [item["name"] for item in body["items"]] == ["v2", "v1", "v0"] and body["total"] == 3


def test_a_page_reads_about_one_page_of_entries(tenant: CreatedTenant, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = create_folder(tenant.root_path_part_id, "big", tenant.api_key)
    for i in range(30):
        create_folder(folder["path_part_id"], f"f{i:02}", tenant.api_key)
        create_document(folder["path_part_id"], f"d{i:02}", tenant.api_key)
    read: list[int] = []
    real_query = aws.query

    def counting(table: Any, request: dict[str, Any], limit: int | None = None) -> list[dict[str, Any]]:
        items = real_query(table, request, limit)
        read.append(len(items))
        return items

    monkeypatch.setattr(aws, "query", counting)
    for order in SortOrder:
        read.clear()
        body = call_api("GET", f"/v1/folders/{folder['id']}/contents?limit=5&sort_order={order.value}",
                        api_key=tenant.api_key).body
        assert len(body["items"]) == 5 and body["total"] == 60
        # One query per part type, each reading the page (and, in name order, the entry after it).
        assert len(read) == 2 and sum(read) <= 12, (order, read)


def test_totals_follow_creates_deletes_and_new_versions(tenant: CreatedTenant) -> None:
    folder = create_folder(tenant.root_path_part_id, "counted", tenant.api_key)

    def totals() -> dict[str, int]:
        return {name: call_api("GET", template.format(folder_id=folder["id"], parent_id=folder["path_part_id"])
                               + ("&" if "?" in template else "?") + "limit=1", api_key=tenant.api_key).body["total"]
                for name, (template, _) in ENDPOINTS.items()}

    sub = create_folder(folder["path_part_id"], "sub", tenant.api_key)
    create_folder(sub["path_part_id"], "deeper", tenant.api_key)
    doc = create_document(folder["path_part_id"], "doc.md", tenant.api_key)
    created = documents.ingest(folder["path_part_id"], "up.txt", documents.text(1), tenant.api_key)
    assert totals() == {"contents": 3, "folders": 1, "documents": 2, "path-parts": 3}
    assert upload(f"/v1/documents/{doc['id']}/ingest", "v1.txt", documents.text(1), tenant.api_key).status == 201
    assert totals() == {"contents": 3, "folders": 1, "documents": 2, "path-parts": 3}
    assert call_api("DELETE", f"/v1/folders/{sub['id']}", api_key=tenant.api_key).status == 204
    assert call_api("DELETE", f"/v1/documents/{created['document_id']}", api_key=tenant.api_key).status == 204
    assert totals() == {"contents": 1, "folders": 0, "documents": 1, "path-parts": 1}
    root = call_api("GET", "/v1/folders?limit=1", api_key=tenant.api_key).body
    assert root["total"] == 1


def _make_legacy(tenant: CreatedTenant, parent_id: str) -> None:
    """As parts were stored before listing entries: no entries of its children, no counts, no marker."""
    table = aws.table(os.environ["TABLE_NAME"])
    entries = table.query(KeyConditionExpression=Key("pk").eq(f"TENANT#{tenant.tenant_id}")
                          & Key("sk").begins_with(f"LISTED#{parent_id}#"))["Items"]
    assert entries
    with table.batch_writer() as batch:
        for entry in entries:
            batch.delete_item(Key={"pk": entry["pk"], "sk": entry["sk"]})
    table.update_item(Key={"pk": f"TENANT#{tenant.tenant_id}", "sk": f"PATHPART#{parent_id}"},
                      UpdateExpression="REMOVE children_listed, children_FOLDER, children_DOCUMENT")


def test_a_part_stored_before_listing_entries_is_indexed_once(tenant: CreatedTenant, mixed: dict[str, Any]) -> None:
    parent = _part(tenant, mixed["path_part_id"])
    expected = _expected(parent, SortOrder.NAME, None)
    _make_legacy(tenant, mixed["path_part_id"])
    assert not store.listing_state(parent).get(store.LISTED)

    path = f"/v1/path-parts?parent_path_id={mixed['path_part_id']}&sort_order=NAME"
    assert _walk(path, tenant.api_key, 5) == (expected, len(expected))
    state = store.listing_state(parent)
    assert state[store.LISTED] and store.children_count(state, PartType) == len(expected)
    for order in SortOrder:
        assert _walk(f"/v1/path-parts?parent_path_id={mixed['path_part_id']}&sort_order={order.value}",
                     tenant.api_key, 7) == (_expected(parent, order, None), len(expected))


def test_listings_racing_to_index_a_part_count_each_child_once(tenant: CreatedTenant,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    folder = create_folder(tenant.root_path_part_id, "old", tenant.api_key)
    for i in range(3):
        create_folder(folder["path_part_id"], f"f{i}", tenant.api_key)
    _make_legacy(tenant, folder["path_part_id"])
    principal = identity.principal_of(tenant.tenant_id, tenant.user_id)
    assert principal is not None
    real = store._index_batch
    raced: list[int] = []

    def with_a_race(parts: Any) -> bool:
        """The first batch of the first listing waits while another listing indexes the part and a create
        (counted by the create itself) lands."""
        if not raced:
            raced.append(1)
            _, total = tree.page(_part(tenant, folder["path_part_id"]), 1, SortOrder.NAME, None, 20, 0)
            raced.append(total)
            store.create_folder(principal, _part(tenant, folder["path_part_id"]), "late")
        return real(parts)

    monkeypatch.setattr(store, "_index_batch", with_a_race)
    body = call_api("GET", f"/v1/folders/{folder['id']}/contents", api_key=tenant.api_key).body
    assert raced[1] == 3
    assert body["total"] == 4 and sorted(item["name"] for item in body["items"]) == ["f0", "f1", "f2", "late"]
    assert store.children_count(store.listing_state(_part(tenant, folder["path_part_id"])), PartType) == 4
