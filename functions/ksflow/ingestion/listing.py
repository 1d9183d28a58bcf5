"""The tenant's ingestions newest first, and how many there are, kept beside the records so a page reads one page.

Items (partition `INGESTIONS#{tenant_id}`):
- `AT#{created_at}#{document_version_id}`: one entry per ingestion (`document_version_id`, `lineage`),
  put in the transaction that creates its record and deleted in the one that deletes it. The record
  names its entry (`listed_as`). Creation order never changes: a rerun keeps `created_at`.
- `COUNT`: `total`, changed in those same transactions. It sorts after every entry, so the partition
  read backwards starts with it.

An OWNER/ADMIN's page is one Query (the count and `offset + limit` entries) and one BatchGetItem of
the page's records, whatever the tenant holds. A USER sees the ingestions of versions it can read
(grants on subtrees), which no count follows: its listing reads every entry of the tenant (about 150
bytes each, so 10,000 ingestions are ~1.5 MB: two Query pages), filters them by lineage, then reads
the page's records.

Ingestions written before these items existed carry no `listed_as`; `ksflow admin index-ingestions`
lists and counts each of them once (`backfill`), whatever runs or deletes meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from ksflow import aws, clock
from ksflow.config import settings
from ksflow.ingestion.models import Ingestion

# On an ingestion record: the sort key of its entry; absent on records written before the entries.
LISTED_AS = "listed_as"
_COUNT = "COUNT"
_ENTRY = "AT#"


def _partition(tenant_id: str) -> str:
    return f"INGESTIONS#{tenant_id}"


def entry_sk(ingestion: Ingestion) -> str:
    return f"{_ENTRY}{clock.iso(ingestion.created_at)}#{ingestion.document_version_id}"


def _count(tenant_id: str, delta: int) -> dict[str, Any]:
    return aws.adding(settings().table_name, {"pk": _partition(tenant_id), "sk": _COUNT}, {"total": delta})


def created(ingestion: Ingestion) -> list[dict[str, Any]]:
    """Transaction items that list and count a new ingestion (its record must carry `listed_as`)."""
    entry = {"pk": _partition(ingestion.tenant_id), "sk": entry_sk(ingestion),
             "document_version_id": ingestion.document_version_id, "lineage": ingestion.lineage}
    return [{"Put": {"TableName": settings().table_name, "Item": entry}}, _count(ingestion.tenant_id, 1)]


def removed(tenant_id: str, listed_as: list[str]) -> list[dict[str, Any]]:
    """Transaction items that take these entries (of records deleted in the same transaction) out of the listing."""
    if not listed_as:
        return []
    table_name, partition = settings().table_name, _partition(tenant_id)
    deletes = [{"Delete": {"TableName": table_name, "Key": {"pk": partition, "sk": sk}}} for sk in listed_as]
    return [*deletes, _count(tenant_id, -len(listed_as))]


def _entries(tenant_id: str, reach: int | None) -> tuple[list[dict[str, Any]], int]:
    """The newest `reach` entries (all without it) and the count, from one backward read of the partition."""
    request = {"KeyConditionExpression": Key("pk").eq(_partition(tenant_id)), "ScanIndexForward": False,
               "ProjectionExpression": "sk, document_version_id, lineage, #total",
               "ExpressionAttributeNames": {"#total": "total"}}
    items = aws.query(aws.table(settings().table_name), request, None if reach is None else reach + 1)
    total = int(items.pop(0)["total"]) if items and items[0]["sk"] == _COUNT else 0
    return items, total


def page(tenant_id: str, limit: int, offset: int,
         can_read: Callable[[list[str]], bool] | None = None) -> tuple[list[str], int]:
    """The version ids of a page of the tenant's ingestions, newest first, and how many there are in all.

    With `can_read` (a USER's access to a lineage), only the ingestions it admits, counted as read.
    """
    if can_read is None:
        entries, total = _entries(tenant_id, offset + limit)
        return [str(e["document_version_id"]) for e in entries[offset:offset + limit]], total
    entries, _ = _entries(tenant_id, None)
    visible = [str(e["document_version_id"]) for e in entries if can_read([str(pp) for pp in e["lineage"]])]
    return visible[offset:offset + limit], len(visible)


def _legacy(table: Any) -> Iterator[dict[str, Any]]:
    """Ingestion records without an entry (a Scan: run with the operator's credentials, never by the service)."""
    request: dict[str, Any] = {"FilterExpression": Attr("sk").begins_with("INGESTION#") & Attr(LISTED_AS).not_exists()}
    while True:
        response = table.scan(**request)
        yield from response["Items"]
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _list_legacy(table: Any, record: dict[str, Any]) -> bool:
    """Give a record its entry and count it; False if it was listed or deleted meanwhile."""
    ingestion = Ingestion.model_validate(record)
    mark = {"Update": {"TableName": table.name, "Key": {"pk": record["pk"], "sk": record["sk"]},
                       "UpdateExpression": f"SET {LISTED_AS} = :entry",
                       "ConditionExpression": f"attribute_exists(pk) AND attribute_not_exists({LISTED_AS})",
                       "ExpressionAttributeValues": {":entry": entry_sk(ingestion)}}}
    try:
        table.meta.client.transact_write_items(TransactItems=[mark, *created(ingestion)])
    except ClientError as error:
        if 0 in aws.failed_conditions(error):
            return False
        raise
    return True


def backfill(table: Any) -> int:
    """List and count the ingestions written before the listing entries (an upgrade's one-off step, safe to repeat).

    Each record is marked in the transaction that lists and counts it, so a record is counted once
    however often this runs; a delete that read it unlisted retries once it is listed.
    """
    return sum(_list_legacy(table, record) for record in _legacy(table))
