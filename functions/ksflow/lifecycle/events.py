"""A run's history: one item per event in the run's own partition, oldest first.

Items: `RUN#{run_id}` / `EVENT#{at}#{ordinal}{event_id}`. The run item's `event_count` is
added to in the same transaction as each event, so a page's `total` needs no count, and a
page is one query. Events are written by whoever changes the run (`run_store`), never
afterwards, so no crash leaves a change without its event.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from boto3.dynamodb.conditions import Key
from pydantic import BaseModel

from ksflow import aws, clock

EVENT_PREFIX = "EVENT#"


class RunEventType(StrEnum):
    CREATED = "created"
    DISPATCH_ATTEMPT = "dispatch_attempt"
    DISPATCHED = "dispatched"
    HEARTBEAT = "heartbeat"
    CALLBACK = "callback"
    COMPLETED = "completed"
    FAILED = "failed"
    RETRY_SCHEDULED = "retry_scheduled"
    RETRIED = "retried"


class RunEvent(BaseModel):
    id: str
    type: RunEventType
    at: datetime
    attempt: int
    detail: dict[str, Any]


def new(type_: RunEventType, attempt: int, detail: dict[str, Any] | None = None,
        at: datetime | None = None) -> RunEvent:
    return RunEvent(id=str(uuid.uuid4()), type=type_, at=at or clock.now(), attempt=attempt,
                    detail={key: value for key, value in (detail or {}).items() if value is not None})


def _item(run_id: str, event: RunEvent, ordinal: int) -> dict[str, Any]:
    # The ordinal keeps the order of events written together at the same instant.
    return {"pk": f"RUN#{run_id}", "sk": f"{EVENT_PREFIX}{clock.iso(event.at)}#{ordinal:02d}{event.id}",
            **aws.as_item(event.model_dump(mode="json"))}


def puts(table_name: str, run_id: str, events: list[RunEvent]) -> list[dict[str, Any]]:
    """TransactWriteItems entries that add `events` to the run's history."""
    return [{"Put": {"TableName": table_name, "Item": _item(run_id, event, ordinal)}}
            for ordinal, event in enumerate(events)]


def _history_of(run_id: str) -> Any:
    return Key("pk").eq(f"RUN#{run_id}") & Key("sk").begins_with(EVENT_PREFIX)


def page(table: Any, run_id: str, limit: int, offset: int, counted: int) -> list[RunEvent]:
    """Events `offset` to `offset + limit`, oldest first, in one query of at most that many items.

    Only the first `counted` events (the run's `event_count` as read) are served, so a page never holds
    events its `total` does not count while the run is still moving."""
    reach = min(offset + limit, counted)
    if reach <= offset:
        return []
    items = aws.query(table, {"KeyConditionExpression": _history_of(run_id)}, reach)
    return [RunEvent.model_validate(aws.from_item(item)) for item in items[offset:offset + limit]]


def delete_all(table: Any, run_ids: list[str]) -> None:
    """Remove the histories of deleted runs (after the runs themselves, so no run is left without one)."""
    with table.batch_writer() as batch:
        for run_id in run_ids:
            for item in aws.query(table, {"KeyConditionExpression": _history_of(run_id),
                                          "ProjectionExpression": "pk, sk"}):
                batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
