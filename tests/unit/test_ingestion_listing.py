"""`GET /v1/workflows/document_versions`: pages read about one page, and `total` is kept, not counted."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from boto3.dynamodb.conditions import Key

from ksflow import aws
from ksflow.identity.models import CreatedTenant, CreatedUser
from ksflow.ingestion import listing
from ksflow.ingestion import store as ingestion_store
from tests import documents
from tests.conftest import call_api, upload
from tests.unit.test_api_knowledge import create_folder

PATH = "/v1/workflows/document_versions"


def _listed(api_key: str, query: str = "limit=100") -> tuple[list[str], int]:
    response = call_api("GET", f"{PATH}?{query}", api_key=api_key)
    assert response.status == 200, response.body
    return [item["workflow_id"] for item in response.body["items"]], response.body["total"]


def _ingested(parent_id: str, name: str, api_key: str) -> str:
    created = documents.ingest(parent_id, name, documents.text(1), api_key)
    documents.finished(created["workflow_id"], api_key)
    return str(created["workflow_id"])


@pytest.fixture
def shelves(tenant: CreatedTenant) -> dict[str, Any]:
    """/team with two ingested documents (the second one twice: two versions), /private with one; newest last."""
    team = create_folder(tenant.root_path_part_id, "team", tenant.api_key)
    private = create_folder(tenant.root_path_part_id, "private", tenant.api_key)
    first = _ingested(team["path_part_id"], "a.txt", tenant.api_key)
    second = documents.ingest(team["path_part_id"], "b.txt", documents.text(1), tenant.api_key)
    documents.finished(second["workflow_id"], tenant.api_key)
    version = _new_version(second["document_id"], tenant.api_key)
    hidden = _ingested(private["path_part_id"], "c.txt", tenant.api_key)
    return {"team": team, "private": private,
            "ids": [first, second["workflow_id"], version, hidden], "document": second["document_id"]}


def _new_version(document_id: str, api_key: str) -> str:
    response = upload(f"/v1/documents/{document_id}/ingest", "b.txt", documents.text(2), api_key)
    assert response.status == 201, response.body
    documents.finished(response.body["workflow_id"], api_key)
    return str(response.body["workflow_id"])


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Ingestion records asked for by key, and listing items a Query returned, while the test runs."""
    counted = {"records": 0, "entries": 0}
    batch_get, query = aws.batch_get, aws.query

    def counting_batch_get(table: Any, keys: Any, *, consistent: bool) -> list[dict[str, Any]]:
        counted["records"] += sum(1 for k in keys if str(k["sk"]).startswith("INGESTION#"))
        return batch_get(table, keys, consistent=consistent)

    def counting_query(table: Any, request: dict[str, Any], limit: int | None = None) -> list[dict[str, Any]]:
        items = query(table, request, limit)
        counted["entries"] += sum(1 for item in items if str(item.get("sk", "")).startswith(("AT#", "COUNT")))
        return items

    with monkeypatch.context() as m:
        m.setattr(aws, "batch_get", counting_batch_get)
        m.setattr(aws, "query", counting_query)
        yield counted


def test_pages_newest_first_with_kept_totals_through_rerun_and_delete(
        tenant: CreatedTenant, shelves: dict[str, Any], reads: dict[str, int]) -> None:
    newest_first = list(reversed(shelves["ids"]))
    assert _listed(tenant.api_key) == (newest_first, 4)
    reads.update(records=0, entries=0)
    assert _listed(tenant.api_key, "limit=2&offset=1") == (newest_first[1:3], 4)
    # The count and the first three entries, then only the page's two records.
    assert reads == {"records": 2, "entries": 4}
    assert _listed(tenant.api_key, "page=2&page_size=3") == (newest_first[3:], 4)

    # A rerun keeps its place and the count.
    rerun = call_api("POST", f"{PATH}/{shelves['ids'][0]}", api_key=tenant.api_key)
    assert rerun.status == 200, rerun.body
    documents.finished(shelves["ids"][0], tenant.api_key)
    assert _listed(tenant.api_key) == (newest_first, 4)

    # Deleting a document takes both its versions' ingestions away; deleting a folder, everything under it.
    assert call_api("DELETE", f"/v1/documents/{shelves['document']}", api_key=tenant.api_key).status == 204
    assert _listed(tenant.api_key) == ([shelves["ids"][3], shelves["ids"][0]], 2)
    assert call_api("DELETE", f"/v1/folders/{shelves['team']['id']}", api_key=tenant.api_key).status == 204
    assert _listed(tenant.api_key) == ([shelves["ids"][3]], 1)
    # Nothing of the deleted ones is left in the listing's partition.
    partition = aws.table(os.environ["TABLE_NAME"]).query(
        KeyConditionExpression=Key("pk").eq(f"INGESTIONS#{tenant.tenant_id}"))["Items"]
    assert sorted(item["sk"][:3] for item in partition) == ["AT#", "COU"]


def test_a_user_pages_through_what_it_may_read(tenant: CreatedTenant, member: CreatedUser,
                                               other_tenant: CreatedTenant, shelves: dict[str, Any],
                                               grant: Callable[[str, str, str], None]) -> None:
    assert _listed(member.api_key) == ([], 0)
    grant(member.user_id, shelves["team"]["path_part_id"], "READ_ONLY")
    team_newest_first = list(reversed(shelves["ids"][:3]))
    assert _listed(member.api_key) == (team_newest_first, 3)
    assert _listed(member.api_key, "limit=1&offset=2") == (team_newest_first[2:], 3)
    assert _listed(other_tenant.api_key) == ([], 0)


def _unlist(tenant: CreatedTenant) -> None:
    """Make the tenant's ingestions look as they were before the listing entries existed."""
    table = aws.table(os.environ["TABLE_NAME"])
    partition = table.query(KeyConditionExpression=Key("pk").eq(f"INGESTIONS#{tenant.tenant_id}"))["Items"]
    for item in partition:
        table.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
    records = table.query(KeyConditionExpression=Key("pk").eq(f"TENANT#{tenant.tenant_id}")
                          & Key("sk").begins_with("INGESTION#"))["Items"]
    for record in records:
        table.update_item(Key={"pk": record["pk"], "sk": record["sk"]}, UpdateExpression="REMOVE listed_as")


def test_legacy_ingestions_are_listed_and_counted_once(tenant: CreatedTenant, shelves: dict[str, Any],
                                                       capsys: Any) -> None:
    from ksflow import cli

    _unlist(tenant)
    assert _listed(tenant.api_key) == ([], 0)
    # A legacy ingestion deleted before the backfill takes nothing from the count.
    assert call_api("DELETE", f"/v1/folders/{shelves['private']['id']}", api_key=tenant.api_key).status == 204
    cli.main(["admin", "--table-name", os.environ["TABLE_NAME"], "index-ingestions"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"listed_ingestions": 3}
    assert listing.backfill(aws.table(os.environ["TABLE_NAME"])) == 0
    assert _listed(tenant.api_key) == (list(reversed(shelves["ids"][:3])), 3)
    # An upload after the upgrade is counted with them.
    newest = _ingested(shelves["team"]["path_part_id"], "d.txt", tenant.api_key)
    assert _listed(tenant.api_key, "limit=1") == ([newest], 4)


def test_a_delete_racing_the_backfill_counts_each_ingestion_out_once(
        tenant: CreatedTenant, shelves: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _unlist(tenant)
    table = aws.table(os.environ["TABLE_NAME"])
    original = ingestion_store._delete_records
    raced: list[bool] = []

    def backfill_first(tenant_id: str, records: list[dict[str, Any]]) -> bool:
        if not raced:  # the delete read the records unlisted; the backfill lists them before it writes
            raced.append(listing.backfill(table) > 0)
        return original(tenant_id, records)

    with monkeypatch.context() as m:
        m.setattr(ingestion_store, "_delete_records", backfill_first)
        assert call_api("DELETE", f"/v1/documents/{shelves['document']}", api_key=tenant.api_key).status == 204
    assert raced == [True]
    assert _listed(tenant.api_key) == ([shelves["ids"][3], shelves["ids"][0]], 2)


def test_a_delete_whose_answer_was_lost_and_retried_counts_out_once(
        tenant: CreatedTenant, shelves: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    client = aws.table(os.environ["TABLE_NAME"]).meta.client
    send = client.transact_write_items

    def landed_then_resent(**request: Any) -> Any:
        if any(str(item.get("Delete", {}).get("Key", {}).get("sk", "")).startswith("INGESTION#")
               for item in request["TransactItems"]):
            send(**request)  # it landed, but the answer never came back: the SDK sends it again
        return send(**request)

    with monkeypatch.context() as m:
        m.setattr(client, "transact_write_items", landed_then_resent)
        assert call_api("DELETE", f"/v1/documents/{shelves['document']}", api_key=tenant.api_key).status == 204
    assert _listed(tenant.api_key) == ([shelves["ids"][3], shelves["ids"][0]], 2)
