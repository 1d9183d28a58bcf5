"""Ingestion records and the chunks they produce.

Items (partition `TENANT#{tenant_id}`):
- `INGESTION#{document_version_id}`: the version's ingestion (`Ingestion`): status, attempt,
  the current execution's name, progress (`last_activity`, `chunks_processed`) and `error`;
  listed and counted in the same transactions that write and delete it (`listing`).
- `CHUNK#{document_version_id}#{index:06d}`: one chunk (`text`, `start`/`end` offsets in the
  extracted text, `attempt` that wrote it, `chunk_id`). An attempt overwrites chunks by index and
  deletes those past its own count, so a completed ingestion's chunks are exactly its last attempt's.
  Keyed by index, so a page of chunks is one query from its first index.
- `CHUNKID#{chunk_id}`: points at the chunk with that id (`document_version_id`, `index`), so
  `/v1/chunks/{chunk_id}` is one Get away. Each pointer is written, and the one of the chunk it
  replaces deleted, in the same transaction as its chunk, so no pointer outlives its chunk.

Every change a task makes is conditional on the ingestion still being open and still
belonging to the task's execution: a cancel or a newer rerun wins, and a late task of an
older execution changes nothing. Chunk writes are fenced the same way: each batch is one
transaction with a check on the ingestion record, so once an attempt is cancelled or
superseded none of its chunks can land, even while the next attempt writes its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError
from pydantic import BaseModel

from ksflow import aws, clock, observability
from ksflow.config import settings
from ksflow.ingestion import listing
from ksflow.ingestion.chunking import Chunk
from ksflow.ingestion.models import OPEN_STATUSES, Activity, Ingestion, IngestionStatus


def _table() -> Any:
    return aws.table(settings().table_name)


def _pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def key(tenant_id: str, document_version_id: str) -> dict[str, str]:
    return {"pk": _pk(tenant_id), "sk": f"INGESTION#{document_version_id}"}


def _chunk_sk(document_version_id: str, index: int) -> str:
    return f"CHUNK#{document_version_id}#{index:06d}"


def _chunk_pointer_key(tenant_id: str, chunk_id: str) -> dict[str, str]:
    return {"pk": _pk(tenant_id), "sk": f"CHUNKID#{chunk_id}"}


_CHUNK_ID_NAMESPACE = uuid.UUID("6f0d4b8e-2c1a-5e7b-9a43-0c5f1d2e8b71")


def chunk_id(document_version_id: str, execution_name: str, index: int) -> str:
    """Stable for a chunk of one ingestion attempt (a retried task writes the same ids); a rerun, being a
    new execution, gives its chunks new ids, so an id read before the rerun never names different text."""
    return str(uuid.uuid5(_CHUNK_ID_NAMESPACE, f"{document_version_id}/{execution_name}/{index}"))


class StoredChunk(BaseModel):
    chunk_id: str
    document_version_id: str
    index: int
    text: str
    attempt: int
    created_at: datetime


def put_request(ingestion: Ingestion) -> list[dict[str, Any]]:
    """The transaction items that create the ingestion, listed and counted (`listing`), with its document version."""
    record = {**key(ingestion.tenant_id, ingestion.document_version_id), **ingestion.model_dump(mode="json"),
              listing.LISTED_AS: listing.entry_sk(ingestion)}
    return [{"Put": {"TableName": settings().table_name, "ConditionExpression": "attribute_not_exists(pk)",
                     "Item": record}}, *listing.created(ingestion)]


def get(tenant_id: str, document_version_id: str) -> Ingestion | None:
    item = _table().get_item(Key=key(tenant_id, document_version_id), ConsistentRead=True).get("Item")
    return Ingestion.model_validate(item) if item else None


def _query(query: dict[str, Any]) -> list[dict[str, Any]]:
    return aws.query(_table(), query)


def get_many(tenant_id: str, document_version_ids: list[str]) -> list[Ingestion]:
    """The ingestions of these versions in the order given (one BatchGetItem a hundred); those gone are left out."""
    items = aws.batch_get(_table(), [key(tenant_id, version_id) for version_id in document_version_ids],
                          consistent=False)
    found = {str(item["document_version_id"]): Ingestion.model_validate(item) for item in items}
    return [found[version_id] for version_id in document_version_ids if version_id in found]


def _update(tenant_id: str, document_version_id: str, values: dict[str, Any], *,
            execution_name: str | None, expected_attempt: int | None = None,
            statuses: Iterable[IngestionStatus] = OPEN_STATUSES) -> Ingestion | None:
    """SET `values` if the status is one of `statuses` (and the execution/attempt match); None if not."""
    now = clock.iso(clock.now())
    values = {**values, "last_state_update_timestamp": now}
    allowed = {f":status{i}": status.value for i, status in enumerate(statuses)}
    condition = f"#status IN ({', '.join(allowed)})"
    extra: dict[str, Any] = {}
    if execution_name is not None:
        condition += " AND execution_name = :execution"
        extra[":execution"] = execution_name
    if expected_attempt is not None:
        condition += " AND attempt = :expected_attempt"
        extra[":expected_attempt"] = expected_attempt
    try:
        response = _table().update_item(
            Key=key(tenant_id, document_version_id),
            UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in values),
            ConditionExpression=f"attribute_exists(pk) AND {condition}",
            ExpressionAttributeNames={"#status": "status", **{f"#{name}": name for name in values}},
            ExpressionAttributeValues={**{f":{name}": value for name, value in values.items()}, **allowed, **extra},
            ReturnValues="ALL_NEW",
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise
    updated = Ingestion.model_validate(response["Attributes"])
    if "status" in values:
        observability.ingestion_changed(updated)
    return updated


def begin(tenant_id: str, document_version_id: str, execution_name: str) -> Ingestion | None:
    """pending -> processing for the current execution; None if cancelled, superseded or deleted."""
    now = clock.iso(clock.now())
    return _update(tenant_id, document_version_id,
                   {"status": IngestionStatus.PROCESSING.value, "last_activity": Activity.EXTRACT.value,
                    "start_time": now},
                   execution_name=execution_name)


def record_activity(tenant_id: str, document_version_id: str, execution_name: str, activity: Activity) -> bool:
    return _update(tenant_id, document_version_id, {"last_activity": activity.value},
                   execution_name=execution_name) is not None


def complete(tenant_id: str, document_version_id: str, execution_name: str, chunks: int) -> bool:
    return _update(tenant_id, document_version_id,
                   {"status": IngestionStatus.COMPLETED.value, "last_activity": Activity.COMPLETED.value,
                    "chunks_processed": chunks, "error": None, "close_time": clock.iso(clock.now())},
                   execution_name=execution_name) is not None


def fail(tenant_id: str, document_version_id: str, execution_name: str, error: str) -> bool:
    return _update(tenant_id, document_version_id,
                   {"status": IngestionStatus.FAILED.value, "last_activity": Activity.FAILED.value,
                    "error": error[:8192], "close_time": clock.iso(clock.now())},
                   execution_name=execution_name) is not None


def cancel(tenant_id: str, document_version_id: str) -> Ingestion | None:
    """Open -> cancelled, whichever execution runs; None if it already ended."""
    return _update(tenant_id, document_version_id,
                   {"status": IngestionStatus.CANCELLED.value, "last_activity": Activity.CANCELLED.value,
                    "close_time": clock.iso(clock.now())},
                   execution_name=None)


def restart(ingestion: Ingestion, execution_name: str) -> Ingestion | None:
    """A finished ingestion becomes pending under a new attempt; None if it is open or changed meanwhile."""
    now = clock.iso(clock.now())
    finished = [s for s in IngestionStatus if not s.open]
    return _update(ingestion.tenant_id, ingestion.document_version_id,
                   {"status": IngestionStatus.PENDING.value, "last_activity": Activity.RERUN.value,
                    "attempt": ingestion.attempt + 1, "execution_name": execution_name, "error": None,
                    "last_run_timestamp": now, "start_time": None, "close_time": None},
                   execution_name=None, expected_attempt=ingestion.attempt, statuses=finished)


# DynamoDB takes at most 100 actions per transaction; one of them is the fence.
_WRITES_PER_TRANSACTION = 99


def _fence(tenant_id: str, document_version_id: str, execution_name: str) -> dict[str, Any]:
    """The check that the ingestion is processing under this execution, in every chunk transaction."""
    return {"ConditionCheck": {
        "TableName": settings().table_name, "Key": key(tenant_id, document_version_id),
        "ConditionExpression": "#status = :processing AND execution_name = :execution",
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": {":processing": IngestionStatus.PROCESSING.value, ":execution": execution_name},
    }}


def _in_transactions(groups: Iterable[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    """Writes packed into transactions, never splitting a group (a chunk with its pointers)."""
    batch: list[dict[str, Any]] = []
    for group in groups:
        if len(batch) + len(group) > _WRITES_PER_TRANSACTION:
            yield batch
            batch = []
        batch += group
    if batch:
        yield batch


def replace_chunks(ingestion: Ingestion, chunks: list[Chunk]) -> bool:
    """Write the attempt's chunks by index and delete any beyond its count, while it is the current one.

    A chunk, its pointer and the removal of the pointer of the chunk it replaces share a transaction.
    False as soon as a batch is refused because the ingestion was cancelled, rerun or deleted:
    batches written before that belong to the attempt that was current then, and the next
    attempt replaces them.
    """
    tenant_id, version_id = ingestion.tenant_id, ingestion.document_version_id
    table_name, now = settings().table_name, clock.iso(clock.now())
    stored = {int(item["sk"].rsplit("#", 1)[1]): item for item in _stored_chunk_keys(tenant_id, version_id)}

    def replacing(chunk: Chunk) -> list[dict[str, Any]]:
        new_id = chunk_id(version_id, ingestion.execution_name, chunk.index)
        old_id = stored.get(chunk.index, {}).get("chunk_id")
        return [
            {"Put": {"TableName": table_name, "Item": {
                "pk": _pk(tenant_id), "sk": _chunk_sk(version_id, chunk.index), "tenant_id": tenant_id,
                "document_version_id": version_id, "index": chunk.index, "text": chunk.text, "start": chunk.start,
                "end": chunk.end, "attempt": ingestion.attempt, "chunk_id": new_id, "created_at": now}}},
            {"Put": {"TableName": table_name, "Item": {**_chunk_pointer_key(tenant_id, new_id),
                                                       "document_version_id": version_id, "index": chunk.index}}},
            *([{"Delete": {"TableName": table_name, "Key": _chunk_pointer_key(tenant_id, old_id)}}]
              if old_id and old_id != new_id else []),
        ]

    groups = [replacing(chunk) for chunk in chunks]
    groups += [[{"Delete": {"TableName": table_name, "Key": key}} for key in _keys_of(tenant_id, item)]
               for index, item in stored.items() if index >= len(chunks)]
    fence = _fence(tenant_id, version_id, ingestion.execution_name)
    client = _table().meta.client
    for writes in _in_transactions(groups):
        try:
            client.transact_write_items(TransactItems=[*writes, fence])
        except ClientError as error:
            reasons = error.response.get("CancellationReasons") or [{}]
            if reasons[-1].get("Code") == "ConditionalCheckFailed":
                return False
            raise
    return True


def _stored_chunk_keys(tenant_id: str, document_version_id: str) -> list[dict[str, str]]:
    """Keys and ids of a version's chunks. Consistent, so the chunks of every attempt fenced out before
    this read are all found."""
    condition = Key("pk").eq(_pk(tenant_id)) & Key("sk").begins_with(f"CHUNK#{document_version_id}#")
    return _query({"KeyConditionExpression": condition, "ProjectionExpression": "pk, sk, chunk_id",
                   "ConsistentRead": True})


def _keys_of(tenant_id: str, stored: dict[str, str]) -> list[dict[str, str]]:
    """A stored chunk's key, and its pointer's when it has an id."""
    pointer = [_chunk_pointer_key(tenant_id, stored["chunk_id"])] if stored.get("chunk_id") else []
    return [{"pk": stored["pk"], "sk": stored["sk"]}, *pointer]


def chunk_range(tenant_id: str, document_version_id: str, first: int, last: int) -> list[StoredChunk]:
    """The version's chunks with indexes `first` to `last` (inclusive), in order: one query for one page."""
    if last < first:
        return []
    condition = Key("pk").eq(_pk(tenant_id)) & Key("sk").between(
        _chunk_sk(document_version_id, first), _chunk_sk(document_version_id, last))
    return [StoredChunk.model_validate(item)
            for item in _query({"KeyConditionExpression": condition, "ConsistentRead": True})]


def locate_chunk(tenant_id: str, chunk_id: str) -> tuple[str, int] | None:
    """The (document version id, index) of the chunk with this id, or None if no stored chunk has it."""
    pointer = _table().get_item(Key=_chunk_pointer_key(tenant_id, chunk_id), ConsistentRead=True).get("Item")
    return (str(pointer["document_version_id"]), int(pointer["index"])) if pointer else None


def list_chunks(tenant_id: str, document_version_id: str) -> list[dict[str, Any]]:
    """A version's chunks in order."""
    condition = Key("pk").eq(_pk(tenant_id)) & Key("sk").begins_with(f"CHUNK#{document_version_id}#")
    return _query({"KeyConditionExpression": condition})


def delete_chunks(tenant_id: str, document_version_id: str) -> None:
    with _table().batch_writer() as batch:
        for stored in _stored_chunk_keys(tenant_id, document_version_id):
            for chunk_key in _keys_of(tenant_id, stored):
                batch.delete_item(Key=chunk_key)


# Records removed per transaction by `delete`: each with its entry, and one count update (TransactWriteItems takes 100).
_DELETES_PER_TRANSACTION = 49


def _record_delete(tenant_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """Deletes the record only if it is listed as read (or still unlisted), so the count taken away is its own."""
    listed_as = record.get(listing.LISTED_AS)
    condition = (f"{listing.LISTED_AS} = :entry" if listed_as else f"attribute_not_exists({listing.LISTED_AS})")
    return {"Delete": {"TableName": settings().table_name, "Key": key(tenant_id, str(record["document_version_id"])),
                       "ConditionExpression": f"attribute_exists(pk) AND {condition}",
                       **({"ExpressionAttributeValues": {":entry": listed_as}} if listed_as else {})}}


def _delete_records(tenant_id: str, records: list[dict[str, Any]]) -> bool:
    """False if one of them was deleted or listed since it was read: nothing is written then."""
    writes = [_record_delete(tenant_id, record) for record in records]
    writes += listing.removed(tenant_id, [str(r[listing.LISTED_AS]) for r in records if r.get(listing.LISTED_AS)])
    try:
        _table().meta.client.transact_write_items(TransactItems=writes)
    except ClientError as error:
        if not aws.failed_conditions(error):
            raise
        return False
    return True


def delete(tenant_id: str, document_version_ids: list[str]) -> None:
    """Remove ingestions, their listing entries and counts, and all their chunks (their versions are being deleted).

    Records first: with its record gone no attempt passes the chunk fence, so the chunks
    listed afterwards are all there will ever be. A batch that loses a race (a record deleted or
    listed meanwhile) is redone record by record from a fresh read.
    """
    keys = [key(tenant_id, version_id) for version_id in document_version_ids]
    records = aws.batch_get(_table(), keys, consistent=True)
    for start in range(0, len(records), _DELETES_PER_TRANSACTION):
        batch = records[start:start + _DELETES_PER_TRANSACTION]
        if _delete_records(tenant_id, batch):
            continue
        for record in batch:
            current: dict[str, Any] | None = record
            while current is not None and not _delete_records(tenant_id, [current]):
                current = _table().get_item(Key=key(tenant_id, str(record["document_version_id"])),
                                            ConsistentRead=True).get("Item")
    for version_id in document_version_ids:
        delete_chunks(tenant_id, version_id)
