"""Run items and their guarded state changes.

Items:
- `RUN#{run_id}` / `RUN`: the run (`WorkflowRun`), with `gsi1` = (`WORKFLOWDEF#{definition_id}`,
  `{created_at}#{run_id}`) so a definition's runs list newest first.
- `WORKFLOWDEF#{definition_id}` / `IDEMPOTENCY#{sha256(key)}`: which run an idempotency key made
  (hashed: a 255-character key of 4-byte characters would not fit a sort key).
- `WORKFLOWDEF#{definition_id}` / `WEBHOOK#{sha256(webhook-id)}`: the run a signed callback message
  was accepted for, so the same signed message cannot end another run; expires (TTL
  `expires_at`) once the signature's timestamp window is over.
- the definition item's `run_count`, changed in the same transaction as each run write, and
  `last_scheduled_run_id`, set by the write of each scheduled run.
- `RUN#{run_id}` / `EVENT#...`: the run's history (`lifecycle.events`), written in the same
  transaction as the change each event tells of.
- on the run item, the attributes that place it in the run indexes (`runindex.layout`), set with
  every status change, and the run counts (`runindex.counters`) and aggregates (`analytics.store`),
  changed in the same transaction; beside a snapshot kept in S3, its outputs' path part ids (`output_ids`).

Every status change is a conditional write on the run as it was read (status, attempt and
task token), so whichever of the callback, the deadline, the expiry schedule, a stop or a
heartbeat timeout writes first wins for that attempt, and the loser changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from ksflow import aws, clock, observability
from ksflow.analytics import store as aggregates
from ksflow.config import settings
from ksflow.lifecycle import events
from ksflow.lifecycle.events import RunEvent, RunEventType
from ksflow.lifecycle.policy import NextAttempt, RetryPolicy
from ksflow.runindex import counters, layout
from ksflow.workflows import snapshots
from ksflow.workflows.models import AttemptRecord, EndedBy, RunStatus, RunTrigger, WorkflowRun

OPEN_STATUSES = (RunStatus.PENDING.value, RunStatus.RUNNING.value)


class DuplicateIdempotencyKey(Exception):
    """Another run already holds the idempotency key."""


def _table() -> Any:
    return aws.table(settings().table_name)


def run_key(run_id: str) -> dict[str, str]:
    return {"pk": f"RUN#{run_id}", "sk": "RUN"}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def claim_key(definition_id: str, idempotency_key: str) -> dict[str, str]:
    return {"pk": f"WORKFLOWDEF#{definition_id}", "sk": f"IDEMPOTENCY#{_digest(idempotency_key)}"}


def message_claim_key(definition_id: str, message_id: str) -> dict[str, str]:
    return {"pk": f"WORKFLOWDEF#{definition_id}", "sk": f"WEBHOOK#{_digest(message_id)}"}


# On a run whose snapshot is kept in S3: its outputs' path part ids, so the open runs writing to a folder are found
# from their items alone (an inline snapshot holds them already, so nothing is added to other runs).
OUTPUT_IDS = "output_ids"


def _run_item(run: WorkflowRun) -> dict[str, Any]:
    external = {"run_snapshot"} if run.snapshot_s3_key else set()
    outputs = run.run_snapshot.outputs if external and run.run_snapshot is not None else None
    return {
        **run_key(run.id), **aws.as_item(run.model_dump(mode="json", exclude_none=True, exclude=external)),
        "gsi1pk": f"WORKFLOWDEF#{run.workflow_definition_id}",
        "gsi1sk": f"{clock.iso(run.created_at)}#{run.id}",
        **layout.attributes(run),
        **({OUTPUT_IDS: [str(output.path_part_id) for output in outputs]} if outputs is not None else {}),
    }


def _conditional_failure(error: ClientError) -> bool:
    return error.response["Error"]["Code"] in ("ConditionalCheckFailedException", "TransactionCanceledException")


class DefinitionGone(Exception):
    """The definition was deleted while the run was being created."""


def _definition_key(run: WorkflowRun) -> dict[str, str]:
    return definition_key(run.tenant_id, run.workflow_definition_id)


def definition_key(tenant_id: str, definition_id: str) -> dict[str, str]:
    """The definition item, whose counters the run writes keep (the item itself is `definitions`')."""
    return {"pk": f"TENANT#{tenant_id}", "sk": f"WORKFLOWDEF#{definition_id}"}


def _count_run(table_name: str, run: WorkflowRun, delta: int) -> dict[str, Any]:
    """Keeps the definition's run total exact, so listing never counts runs.

    `runs_created` only grows: a definition delete conditional on it cannot miss a run created
    while another was removed.
    """
    update = "ADD run_count :delta" + (", runs_created :delta" if delta > 0 else "")
    values: dict[str, Any] = {":delta": delta}
    if delta > 0 and run.trigger == RunTrigger.SCHEDULE:
        # The run the next occurrence checks for overlap; an occurrence that ran clears the last one's error.
        update += " SET last_scheduled_run_id = :run REMOVE last_schedule_error"
        values[":run"] = run.id
    return {"Update": {"TableName": table_name, "Key": _definition_key(run),
                       "UpdateExpression": update, "ConditionExpression": "attribute_exists(pk)",
                       "ExpressionAttributeValues": values}}


def _externalize_snapshot(run: WorkflowRun) -> WorkflowRun:
    """A run whose snapshot is too large for its item gets it written to S3, and a pointer."""
    assert run.run_snapshot is not None
    body = run.run_snapshot.model_dump_json().encode()
    if len(body) <= snapshots.INLINE_LIMIT_BYTES:
        return run
    key = snapshots.object_key(run.tenant_id, run.id)
    snapshots.put(key, body)
    return run.model_copy(update={"snapshot_s3_key": key, "snapshot_bytes": len(body)})


def insert(run: WorkflowRun) -> WorkflowRun:
    """Write a new run, its `created` event, its idempotency claim and its definition's run counts at once."""
    run = _externalize_snapshot(run).model_copy(update={"event_count": 1, "rix_pk": layout.partition(run.tenant_id)})
    table = _table()
    created = events.new(RunEventType.CREATED, run.attempt, {
        "invoked_by": run.user_id, "idempotency_key": run.idempotency_key, "trigger": run.trigger.value,
        "scheduled_for": clock.iso(run.scheduled_for) if run.scheduled_for else None}, at=run.created_at)
    writes = [
        {"Put": {"TableName": table.name, "Item": _run_item(run), "ConditionExpression": "attribute_not_exists(pk)"}},
        _count_run(table.name, run, 1),
    ]
    if run.idempotency_key is not None:
        claim = {**claim_key(run.workflow_definition_id, run.idempotency_key), "run_id": run.id,
                 "tenant_id": run.tenant_id}
        writes.append({"Put": {"TableName": table.name, "Item": claim,
                               "ConditionExpression": "attribute_not_exists(pk)"}})
    writes += events.puts(table.name, run.id, [created]) + counters.created(table.name, run)
    writes += aggregates.created(table.name, run)
    try:
        table.meta.client.transact_write_items(TransactItems=writes)
    except BaseException as error:
        if run.snapshot_s3_key:
            snapshots.delete([run.snapshot_s3_key])
        failed = aws.failed_conditions(error)
        if 2 in failed:
            raise DuplicateIdempotencyKey(run.idempotency_key or "") from error
        if 1 in failed:
            raise DefinitionGone(run.workflow_definition_id) from error
        raise
    return run


def with_snapshot(run: WorkflowRun) -> WorkflowRun:
    """The run with its snapshot, read from S3 if it is kept there."""
    if run.run_snapshot is not None or run.snapshot_s3_key is None:
        return run
    return run.model_copy(update={"run_snapshot": snapshots.read(run.snapshot_s3_key)})


def _gsi_query(definition_id: str, limit: int | None, open_only: bool = False) -> list[dict[str, Any]]:
    """Runs of a definition, newest first, reading no more than `limit` items when given."""
    query: dict[str, Any] = {"IndexName": "gsi1", "ScanIndexForward": False,
                             "KeyConditionExpression": Key("gsi1pk").eq(f"WORKFLOWDEF#{definition_id}")}
    if open_only:
        query["FilterExpression"] = Attr("status").is_in(list(OPEN_STATUSES))
    return aws.query(_table(), query, limit)


def list_all_for_definition(definition_id: str) -> list[WorkflowRun]:
    return [WorkflowRun.model_validate(item) for item in _gsi_query(definition_id, None)]


def list_open_for_definition(definition_id: str) -> list[WorkflowRun]:
    """PENDING and RUNNING runs (the index is read in full; closed runs are filtered out by DynamoDB)."""
    return [WorkflowRun.model_validate(item) for item in _gsi_query(definition_id, None, open_only=True)]


def list_open_for_tenant(tenant_id: str) -> list[tuple[WorkflowRun, list[str] | None]] | None:
    """The tenant's PENDING and RUNNING runs, each with its `output_ids` if its item holds them; None while the
    `runs-by-status` index is not deployed.

    Reads the index's keys of open runs only, then their items (consistent, so a run that ended meanwhile
    is left out): the cost follows the runs open now, not the tenant's history. A run written before the
    run indexes is found once indexed (by its next change, or `ksflow admin index-runs`).
    """
    if layout.BY_STATUS not in layout.RUN_INDEXES[:settings().run_index_count]:
        return None
    table = _table()
    keys = []
    for status in OPEN_STATUSES:
        condition = (Key(layout.PARTITION).eq(layout.partition(tenant_id))
                     & Key(layout.BY_STATUS.sort_key).begins_with(f"{status}#"))
        entries = aws.query(table, {"IndexName": layout.BY_STATUS.name, "KeyConditionExpression": condition})
        keys += [{"pk": entry["pk"], "sk": entry["sk"]} for entry in entries]
    items = aws.batch_get(table, keys, consistent=True)
    return [(WorkflowRun.model_validate(item), item.get(OUTPUT_IDS)) for item in items
            if item["status"] in OPEN_STATUSES]


def _claim_delete(table_name: str, run: WorkflowRun) -> dict[str, Any]:
    """Frees the run's idempotency key, unless another run holds it by now."""
    return {"Delete": {"TableName": table_name, "Key": claim_key(run.workflow_definition_id, run.idempotency_key or ""),
                       "ConditionExpression": "attribute_not_exists(pk) OR run_id = :run",
                       "ExpressionAttributeValues": {":run": run.id}}}


def _run_delete(table_name: str, run: WorkflowRun) -> dict[str, Any]:
    """Deletes the run only in the status it was read in, so the counts taken away with it are its own."""
    return {"Delete": {"TableName": table_name, "Key": run_key(run.id),
                       "ConditionExpression": "attribute_exists(pk) AND #status = :status",
                       "ExpressionAttributeNames": {"#status": "status"},
                       "ExpressionAttributeValues": {":status": run.status.value}}}


def _remove(table: Any, run: WorkflowRun, *, of_definition: bool) -> bool | None:
    """Delete a run as read, with its claim and its counts: True; False if it is gone; None if it changed meanwhile
    (its counts are those of its status as read). `of_definition`: also count it out of its definition."""
    writes: list[dict[str, Any]] = [
        _run_delete(table.name, run),
        *([_count_run(table.name, run, -1)] if of_definition else []),
        *([_claim_delete(table.name, run)] if run.idempotency_key is not None else []),
        *(counters.removed(table.name, [run]) + aggregates.removed(table.name, [run]) if run.rix_pk else []),
    ]
    try:
        table.meta.client.transact_write_items(TransactItems=writes)
    except ClientError as error:
        if not _conditional_failure(error):
            raise
        return None if 0 in aws.failed_conditions(error) and get(run.id) is not None else False
    return True


def _remove_latest(table: Any, run: WorkflowRun, *, of_definition: bool) -> bool:
    """Delete the run whatever status it moves to meanwhile; False if it is gone."""
    while (removed := _remove(table, run, of_definition=of_definition)) is None:
        latest = get(run.id)
        if latest is None:
            return False
        run = latest
    if removed:
        if run.snapshot_s3_key:
            snapshots.delete([run.snapshot_s3_key])
        events.delete_all(table, [run.id])
    return removed


def delete(run: WorkflowRun) -> bool:
    """Remove a run record (its execution is left alone) and free its idempotency key."""
    return _remove_latest(_table(), run, of_definition=True)


def index_legacy(run: WorkflowRun) -> bool:
    """Place a run written before the run indexes in them and count it; False if it was indexed meanwhile.

    Conditional on the status as read, so its counts are those of the status it has.
    """
    table = _table()
    while run.rix_pk is None:
        update = _Update().reindex(run).require(f"attribute_not_exists({layout.PARTITION})").require_status(run.status)
        writes = [{"Update": {"TableName": table.name, "Key": run_key(run.id), **update.params()}},
                  *counters.created(table.name, run), *aggregates.created(table.name, run)]
        if _transact(writes, run):
            return True
        latest = get(run.id)
        if latest is None:
            return False
        run = latest
    return False


def reread(runs: list[WorkflowRun]) -> list[WorkflowRun]:
    """The runs as the table holds them now (consistent reads); those deleted meanwhile are left out."""
    items = aws.batch_get(_table(), [run_key(run.id) for run in runs], consistent=True)
    return [WorkflowRun.model_validate(item) for item in items]


# Runs removed per transaction by `delete_many`: two deletes each, and up to a counter update per invoker
# and an aggregate update per bucket (TransactWriteItems takes 100 items).
_DELETE_CHUNK = 24


def delete_many(runs: list[WorkflowRun]) -> None:
    """Remove the runs of a deleted definition with their idempotency claims and their counts.

    A chunk goes in one transaction; if one of its runs is gone already (deleted meanwhile), the
    chunk's runs go one by one, so no count is taken away twice.
    """
    table = _table()
    for start in range(0, len(runs), _DELETE_CHUNK):
        chunk = runs[start:start + _DELETE_CHUNK]
        writes: list[dict[str, Any]] = []
        for run in chunk:
            writes.append(_run_delete(table.name, run))
            if run.idempotency_key is not None:
                writes.append({"Delete": {"TableName": table.name,
                                          "Key": claim_key(run.workflow_definition_id, run.idempotency_key)}})
        try:
            counted = [run for run in chunk if run.rix_pk]
            table.meta.client.transact_write_items(
                TransactItems=writes + counters.removed(table.name, counted) + aggregates.removed(table.name, counted))
        except ClientError as error:
            if not _conditional_failure(error):
                raise
            for run in chunk:
                _remove_latest(table, run, of_definition=False)
    snapshots.delete([run.snapshot_s3_key for run in runs if run.snapshot_s3_key])
    events.delete_all(_table(), [run.id for run in runs])


def definition_and_claim(tenant_id: str, definition_id: str,
                         idempotency_key: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """The definition item and the run its idempotency key made, in one consistent read."""
    definition = definition_key(tenant_id, definition_id)
    if idempotency_key is None:
        return _table().get_item(Key=definition).get("Item"), None
    claim = claim_key(definition_id, idempotency_key)
    items = {item["sk"]: item for item in aws.batch_get(_table(), [definition, claim], consistent=True)}
    claimed = items.get(claim["sk"])
    return items.get(definition["sk"]), claimed["run_id"] if claimed else None


def claimed_run_id(definition_id: str, idempotency_key: str) -> str | None:
    item = _table().get_item(Key=claim_key(definition_id, idempotency_key), ConsistentRead=True).get("Item")
    return item["run_id"] if item else None


def get(run_id: str) -> WorkflowRun | None:
    item = _table().get_item(Key=run_key(run_id), ConsistentRead=True).get("Item")
    return WorkflowRun.model_validate(item) if item else None


def record_task_token(run_id: str, attempt: int, task_token: str) -> WorkflowRun | None:
    """Store the execution's task token while the run is PENDING at `attempt`; None once that attempt ended."""
    update = _Update().set("task_token", task_token).set("updated_at", clock.iso(clock.now()))
    update.require("attribute_exists(pk)").require_status(RunStatus.PENDING).require_attempt(attempt)
    try:
        response = _table().update_item(Key=run_key(run_id), ReturnValues="ALL_NEW", **update.params())
    except ClientError as error:
        if _conditional_failure(error):
            return None
        raise
    return WorkflowRun.model_validate(response["Attributes"])


class _Update:
    """One UpdateItem of a run item: its SET, REMOVE and ADD clauses and the conditions it needs."""

    def __init__(self) -> None:
        self._set: list[str] = []
        self._remove: list[str] = []
        self._add: list[str] = []
        self._conditions: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def _name(self, field: str) -> str:
        self.names[f"#{field}"] = field
        return f"#{field}"

    def set(self, field: str, value: Any, expression: str | None = None) -> _Update:
        self.values[f":{field}"] = value
        self._set.append(f"{self._name(field)} = {expression or f':{field}'}")
        return self

    def append_attempt(self, record: AttemptRecord) -> _Update:
        """Add an earlier attempt to `attempts` (absent on runs that never retried)."""
        self.values[":no_attempts"] = []
        return self.set("attempts", [aws.as_item(record.model_dump(mode="json"))],
                        "list_append(if_not_exists(#attempts, :no_attempts), :attempts)")

    def remove(self, *fields: str) -> _Update:
        self._remove.extend(self._name(field) for field in fields)
        return self

    def add(self, field: str, amount: int) -> _Update:
        self.values[f":add_{field}"] = amount
        self._add.append(f"{self._name(field)} :add_{field}")
        return self

    def reindex(self, after: WorkflowRun) -> _Update:
        """Place the run in the run indexes as `after`. All are set, not only the moved ones: a run written before
        the indexes existed gets them whole (an unchanged value costs no index write)."""
        held = layout.attributes(after)
        for name, value in held.items():
            self.set(name, value)
        return self.remove(*(name for name in layout.OPTIONAL if name not in held))

    def require(self, condition: str, **values: Any) -> _Update:
        self._conditions.append(condition)
        self.values.update({f":{name}": value for name, value in values.items()})
        return self

    def require_status(self, *statuses: RunStatus) -> _Update:
        held = [f":held_{status.value.lower()}" for status in statuses]
        self.values.update({name: status.value for name, status in zip(held, statuses, strict=True)})
        return self.require(f"{self._name('status')} IN ({', '.join(held)})")

    def require_attempt(self, attempt: int) -> _Update:
        """Runs written before attempts existed have no `attempt`: they are at their first."""
        condition = f"{self._name('attempt')} = :held_attempt"
        if attempt == 1:
            condition = f"({condition} OR attribute_not_exists({self._name('attempt')}))"
        return self.require(condition, held_attempt=attempt)

    def require_as_read(self, run: WorkflowRun) -> _Update:
        """Open, at the attempt, and waiting on the task token that were read."""
        self.require_status(RunStatus.PENDING, RunStatus.RUNNING).require_attempt(run.attempt)
        if run.task_token is None:
            return self.require("attribute_not_exists(task_token)")
        return self.require("task_token = :held_token", held_token=run.task_token)

    def params(self) -> dict[str, Any]:
        clauses = [f"SET {', '.join(self._set)}" if self._set else "",
                   f"REMOVE {', '.join(self._remove)}" if self._remove else "",
                   f"ADD {', '.join(self._add)}" if self._add else ""]
        params: dict[str, Any] = {"UpdateExpression": " ".join(c for c in clauses if c),
                                  "ConditionExpression": " AND ".join(self._conditions)}
        if self.names:
            params["ExpressionAttributeNames"] = self.names
        if self.values:
            params["ExpressionAttributeValues"] = self.values
        return params


def _with_events(table_name: str, run_id: str, update: _Update, written: list[RunEvent],
                 change: tuple[WorkflowRun, WorkflowRun] | None = None) -> list[dict[str, Any]]:
    """The run's update (counting its new events) followed by the events' own items; with `change`
    (the run as read, and as it will be), its index attributes and run counts move with it."""
    if written:
        update.add("event_count", len(written))
    counts: list[dict[str, Any]] = []
    if change is not None:
        before, after = change
        update.reindex(after)
        if before.rix_pk is None:
            # Written before the run indexes: counted now, whole, in its new status (`index_legacy` races it).
            update.require(f"attribute_not_exists({layout.PARTITION})")
            counts = counters.created(table_name, after) + aggregates.created(table_name, after)
        else:
            update.require(f"attribute_exists({layout.PARTITION})")
            counts = counters.moved(table_name, before, after) + aggregates.moved(table_name, before, after)
    return [{"Update": {"TableName": table_name, "Key": run_key(run_id), **update.params()}},
            *events.puts(table_name, run_id, written), *counts]


def record_dispatch(run: WorkflowRun, attempt_event: RunEvent, accepted: bool) -> bool:
    """Record a dispatch attempt; an accepted one moves the run PENDING -> RUNNING if it still waits on it.

    A run that ended meanwhile (the runner called back before answering) keeps its status, and
    the attempt is recorded all the same.
    """
    table_name = _table().name
    if accepted:
        dispatched, now = events.new(RunEventType.DISPATCHED, run.attempt), clock.now()
        update = _Update().set("status", RunStatus.RUNNING.value).set("updated_at", clock.iso(now))
        update.require_status(RunStatus.PENDING).require_attempt(run.attempt)
        running = run.model_copy(update={"status": RunStatus.RUNNING, "updated_at": now})
        if _transact(_with_events(table_name, run.id, update, [attempt_event, dispatched], (run, running)), run):
            observability.logger.info("Run is running", extra={"run_id": run.id})
            return True
    _transact(_with_events(table_name, run.id, _Update().require("attribute_exists(pk)"), [attempt_event]), run)
    return False


@dataclass(frozen=True)
class Ending:
    """How an attempt ends: the run's outcome, or (`next_attempt`) a policy retry after a failure."""

    status: RunStatus
    error: str | None
    ended_by: EndedBy
    next_attempt: NextAttempt | None = None


def _ending_update(run: WorkflowRun, ending: Ending, now: datetime) -> tuple[_Update, list[RunEvent], WorkflowRun]:
    """The write that ends the attempt of `run` as read, its events, and the run as it will be."""
    stamp = clock.iso(now)
    update = _Update().require_as_read(run).set("updated_at", stamp)
    if ending.status == RunStatus.COMPLETED:
        outcome = [events.new(RunEventType.COMPLETED, run.attempt, at=now)]
    else:
        outcome = [events.new(RunEventType.FAILED, run.attempt, {
            "reason": ending.ended_by.reason, "error": ending.error,
            "retrying": True if ending.next_attempt else None}, at=now)]
    following = ending.next_attempt
    if following is None:
        update.set("status", ending.status.value).set("completed_at", stamp).set("ended_by", ending.ended_by.value)
        changes: dict[str, Any] = {"status": ending.status, "completed_at": now, "ended_by": ending.ended_by,
                                   "updated_at": now}
        if ending.error is not None:
            update.set("error", ending.error)
            changes["error"] = ending.error
        return update, outcome, run.model_copy(update=changes)
    record = AttemptRecord(attempt=run.attempt, status=ending.status, error=_history_error(ending.error),
                           started_at=run.started_at, completed_at=now)
    changes = _reopen(update, run, record, following.attempt, following.started_at, following.deadline)
    outcome.append(events.new(RunEventType.RETRY_SCHEDULED, following.attempt, {
        "wait_seconds": following.wait_seconds, "starts_at": clock.iso(following.started_at)}, at=now))
    return update, outcome, run.model_copy(update={**changes, "updated_at": now})


# What belongs to one attempt only, cleared when the next one begins.
_ATTEMPT_STATE = ("error", "completed_at", "ended_by", "task_token", "progress", "progress_message",
                  "last_heartbeat_at")


def _reopen(update: _Update, run: WorkflowRun, record: AttemptRecord, attempt: int, started_at: datetime,
            deadline: datetime) -> dict[str, Any]:
    """Add to `update`: PENDING at `attempt` with its times, the attempt that ended kept in `attempts`, and
    that attempt's own state cleared. Returns the same changes for the run's model."""
    update.set("status", RunStatus.PENDING.value).set("attempt", attempt).append_attempt(record)
    update.set("started_at", clock.iso(started_at)).set("deadline", clock.iso(deadline)).set("heartbeat_events", 0)
    update.remove(*_ATTEMPT_STATE)
    return {"status": RunStatus.PENDING, "attempt": attempt, "attempts": [*run.attempts, record],
            "started_at": started_at, "deadline": deadline, "heartbeat_events": 0, **dict.fromkeys(_ATTEMPT_STATE)}


# An earlier attempt's error is kept this long in `attempts`; its `failed` event holds all of it.
HISTORY_ERROR_CHARS = 1024


def _history_error(error: str | None) -> str | None:
    if error is None or len(error) <= HISTORY_ERROR_CHARS:
        return error
    return error[:HISTORY_ERROR_CHARS - 1] + "\u2026"


@dataclass(frozen=True)
class SignedMessage:
    """A runner's message whose signature was verified with one of the definition's secrets."""

    message_id: str
    secret_ciphertext: str


# How long an accepted message id is kept: the signature's timestamp window on both sides, and a margin.
MESSAGE_CLAIM_LIFETIME = timedelta(minutes=15)


class MessageReplayed(Exception):
    """The signed message was already accepted for another run, or another attempt of this one."""

    def __init__(self, claimed_attempt: int | None) -> None:
        super().__init__(claimed_attempt)
        # The attempt of this run it was accepted for; None when it was another run's.
        self.claimed_attempt = claimed_attempt


class SecretRotated(Exception):
    """The secret that verified the message is no longer the definition's current one."""


def _message_writes(table_name: str, run: WorkflowRun, signed: SignedMessage, now: datetime,
                    *, repeatable: bool) -> list[dict[str, Any]]:
    """Claim the message id for this run's attempt, and check the verifying secret is still the current one.

    A repeatable message (a callback) may be presented again to the same attempt; a heartbeat may not.
    """
    claim = {**message_claim_key(run.workflow_definition_id, signed.message_id), "run_id": run.id,
             "attempt": run.attempt, "tenant_id": run.tenant_id,
             "expires_at": int((now + MESSAGE_CLAIM_LIFETIME).timestamp())}
    put: dict[str, Any] = {"TableName": table_name, "Item": claim, "ConditionExpression": "attribute_not_exists(pk)"}
    if repeatable:
        same_attempt = "attempt = :attempt" + (" OR attribute_not_exists(attempt)" if run.attempt == 1 else "")
        put["ConditionExpression"] += f" OR (run_id = :run AND ({same_attempt}))"
        put["ExpressionAttributeValues"] = {":run": run.id, ":attempt": run.attempt}
    return [
        {"Put": put},
        {"ConditionCheck": {"TableName": table_name, "Key": _definition_key(run),
                            "ConditionExpression": "secret_ciphertext = :secret",
                            "ExpressionAttributeValues": {":secret": signed.secret_ciphertext}}},
    ]


def _claimed_attempt(run: WorkflowRun, message_id: str) -> int | None:
    """The attempt of `run` a message id was accepted for; None if another run's (or gone)."""
    item = _table().get_item(Key=message_claim_key(run.workflow_definition_id, message_id),
                             ConsistentRead=True).get("Item")
    if item is None or item.get("run_id") != run.id:
        return None
    return int(item.get("attempt", 1))


def _transact(writes: list[dict[str, Any]], run: WorkflowRun, signed: SignedMessage | None = None) -> bool:
    """False if the run item's condition (the first write) failed; any other failure raises.

    With a signed message, the last two writes are its claim and secret check (`_message_writes`),
    whose failures raise `MessageReplayed` and `SecretRotated`.
    """
    try:
        _table().meta.client.transact_write_items(TransactItems=writes)
    except ClientError as error:
        failed = aws.failed_conditions(error)
        if signed is not None and len(writes) - 2 in failed:
            raise MessageReplayed(_claimed_attempt(run, signed.message_id)) from error
        if signed is not None and len(writes) - 1 in failed:
            raise SecretRotated from error
        if 0 in failed:
            return False
        raise
    return True


def bind_message(run: WorkflowRun, signed: SignedMessage) -> None:
    """Accept a signed callback for a run that has already ended (a repeat), changing nothing else."""
    _transact(_message_writes(_table().name, run, signed, clock.now(), repeatable=True), run, signed)


def end_attempt(run: WorkflowRun, ending: Ending, *, reported: RunEvent | None = None,
                signed: SignedMessage | None = None) -> WorkflowRun | None:
    """End the current attempt of `run` as read; the run as written, or None if it ended or changed meanwhile.

    The run must still hold the task token that was read, so the token answered afterwards is the
    one its execution waits on. A callback's own event comes first (`reported`); its signed
    message is claimed for this attempt and its secret checked against the definition in the
    same transaction: a replay elsewhere or a rotated secret raises and writes nothing.
    """
    table, now = _table(), clock.now()
    update, written, ended = _ending_update(run, ending, now)
    writes = _with_events(table.name, run.id, update, [reported, *written] if reported else written, (run, ended))
    if signed is not None:
        writes += _message_writes(table.name, run, signed, now, repeatable=True)
    if not _transact(writes, run, signed):
        return None
    if ended.status.terminal:
        observability.run_ended(ended)
    return ended


# A runner that reports progress on every heartbeat records at most this many progress events per attempt.
MAX_PROGRESS_EVENTS = 100


def record_heartbeat(run: WorkflowRun, progress: int | None, message: str | None,
                     signed: SignedMessage | None) -> bool:
    """Record a heartbeat on the attempt of `run` as read; False if the attempt ended or changed meanwhile.

    `updated_at` stays: a heartbeat is not a change of the run. A changed progress is an event,
    up to `MAX_PROGRESS_EVENTS` per attempt.
    """
    table, now = _table(), clock.now()
    update = _Update().require_as_read(run).set("last_heartbeat_at", clock.iso(now))
    if progress is not None:
        update.set("progress", progress)
    if message is not None:
        update.set("progress_message", message)
    written: list[RunEvent] = []
    if progress is not None and progress != run.progress and run.heartbeat_events < MAX_PROGRESS_EVENTS:
        written.append(events.new(RunEventType.HEARTBEAT, run.attempt, {"progress": progress, "message": message},
                                  at=now))
        update.add("heartbeat_events", 1)
    writes = _with_events(table.name, run.id, update, written)
    if signed is not None:
        writes += _message_writes(table.name, run, signed, now, repeatable=False)
    return _transact(writes, run, signed)


@dataclass(frozen=True)
class Rerun:
    """A retry by hand: the new attempt, its execution and the definition's current runner settings."""

    attempt: int
    execution: str
    started_at: datetime
    deadline: datetime
    runner_url: str
    secret_ciphertext: str
    retry_policy: RetryPolicy | None
    heartbeat_timeout_seconds: int | None
    by: str


def start_rerun(run: WorkflowRun, rerun: Rerun) -> WorkflowRun | None:
    """A FAILED run (as read) at its next attempt, PENDING; None if it changed meanwhile (a concurrent retry)."""
    now = clock.now()
    record = AttemptRecord(attempt=run.attempt, status=run.status, error=_history_error(run.error),
                           started_at=run.started_at, completed_at=run.completed_at)
    update = _Update().require_status(RunStatus.FAILED).require_attempt(run.attempt)
    changes = {**_reopen(update, run, record, rerun.attempt, rerun.started_at, rerun.deadline),
               "series_start": rerun.attempt, "execution": rerun.execution, "runner_url": rerun.runner_url,
               "secret_ciphertext": rerun.secret_ciphertext, "retry_policy": rerun.retry_policy,
               "heartbeat_timeout_seconds": rerun.heartbeat_timeout_seconds, "updated_at": now}
    stored = {"series_start", "execution", "runner_url", "secret_ciphertext", "retry_policy",
              "heartbeat_timeout_seconds"}
    for field, value in aws.as_item(run.model_copy(update=changes).model_dump(mode="json", include=stored)).items():
        if value is None:
            update.remove(field)
        else:
            update.set(field, value)
    update.set("updated_at", clock.iso(now))
    retried = events.new(RunEventType.RETRIED, rerun.attempt, {"by": rerun.by}, at=now)
    reopened = run.model_copy(update=changes)
    if not _transact(_with_events(_table().name, run.id, update, [retried], (run, reopened)), run):
        return None
    return reopened
