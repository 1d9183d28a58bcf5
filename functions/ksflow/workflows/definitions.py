"""Workflow definitions: validation against the knowledge base, storage and visibility.

Item: `TENANT#{tenant_id}` / `WORKFLOWDEF#{definition_id}` (`WorkflowDefinition`), plus
`run_count`, the number of its runs, and `runs_created`, the number ever created, both kept
exact by the run writes in `run_store`.

A scheduled definition has one Scheduler schedule. Create and PUT change the schedule first
and the item second, putting the schedule back if the item write fails, so a definition never
points at a missing schedule. Delete removes the item first, then the schedule; a schedule
left behind by a failure there is removed by its own next occurrence (`schedules.fire`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from ksflow import aws, clock
from ksflow.config import settings
from ksflow.errors import Conflict, Invalid, NotFound
from ksflow.identity import store as identity
from ksflow.identity.models import Principal
from ksflow.knowledge import store as knowledge
from ksflow.knowledge.models import PartType
from ksflow.observability import logger
from ksflow.schedules import scheduler
from ksflow.schedules.models import ScheduleError, schedule_from_fields
from ksflow.workflows import run_store, runner_url, secrets, webhooks
from ksflow.workflows.models import CreateWorkflowDefinitionRequest, WorkflowDefinition, WorkflowDefinitionResponse

# Kept on the definition by its scheduled occurrences; a PUT leaves them as they are.
_OCCURRENCE_FIELDS = ("last_schedule_error", "last_scheduled_run_id")


def _table() -> Any:
    return aws.table(settings().table_name)


def _key(tenant_id: str, definition_id: str) -> dict[str, str]:
    return run_store.definition_key(tenant_id, definition_id)


def creator_access(principal: Principal, created_by: str) -> knowledge.Access | None:
    """What the definition's creator may read and write today; None once the creator is gone.

    References are judged by the creator whoever writes or invokes the definition, so an ADMIN
    cannot point a USER's definition at a part that USER could then read in its runs.
    """
    if principal.user_id == created_by:
        return knowledge.Access(principal)
    creator = identity.principal_of(principal.tenant_id, created_by)
    return knowledge.Access(creator) if creator is not None else None


def _check_references(principal: Principal, created_by: str, request: CreateWorkflowDefinitionRequest) -> None:
    """Every referenced path part exists, is readable by the creator, and has the kind its role needs."""
    fields: list[tuple[str, list[Any], PartType | None, bool]] = [
        ("source_path_part_ids", request.source_path_part_ids, None, False),
        ("instruction_path_part_ids", request.instruction_path_part_ids, PartType.DOCUMENT, False),
        ("output_path_part_ids", request.output_path_part_ids, PartType.FOLDER, True),
    ]
    if request.template_path_part_id is not None:
        fields.append(("template_path_part_id", [request.template_path_part_id], PartType.DOCUMENT, False))
    ids = [str(pp) for _, values, _, _ in fields for pp in values]
    parts = knowledge.get_path_parts(principal.tenant_id, ids)
    access = creator_access(principal, created_by)
    for field, values, kind, needs_write in fields:
        for index, value in enumerate(values):
            loc: list[str | int] = ["body", field] if field == "template_path_part_id" else ["body", field, index]
            part = parts.get(str(value))
            if part is None or access is None or not access.can_read(part):
                raise Invalid(loc, f"Path part {value} does not exist or is not readable by the definition's creator",
                              "path_part.not_found")
            if kind is not None and part.part_type != kind:
                raise Invalid(loc, f"Path part {value} must be a {kind.value}", "path_part.wrong_type")
            if needs_write and not access.can_write(part):
                raise Invalid(loc, f"Path part {value} is not writable by the definition's creator",
                              "path_part.not_writable")


def _check_runner(request: CreateWorkflowDefinitionRequest) -> None:
    if request.runner_config is None:
        return
    try:
        webhooks.check_secret(request.runner_config.webhook_secret.get_secret_value())
    except ValueError as error:
        raise Invalid(["body", "runner_config", "webhook_secret"], str(error), "secret.unusable") from None
    try:
        runner_url.check(request.runner_config.url, allow_loopback=settings().allow_loopback_runners,
                         require_resolution=False)
    except runner_url.UnsafeRunnerUrl as error:
        raise Invalid(["body", "runner_config", "url"], str(error), "url.unsafe") from error


def _build(principal: Principal, request: CreateWorkflowDefinitionRequest, definition_id: str,
           created_by: str, created_at: datetime) -> WorkflowDefinition:
    """Validate a create or full-replacement request into the definition it describes."""
    schedule = schedule_from_fields(request.schedule_cadence, request.schedule_start_at, request.schedule_timezone,
                                    request.schedule_overlap)
    _check_runner(request)
    _check_references(principal, created_by, request)
    config = request.runner_config
    return WorkflowDefinition(
        tenant_id=principal.tenant_id, id=definition_id, name=request.name, description=request.description,
        runner_type=request.runner_type, runner_url=config.url if config else None,
        secret_ciphertext=(
            secrets.encrypt(config.webhook_secret.get_secret_value(), principal.tenant_id, definition_id)
            if config else None
        ),
        max_run_duration_seconds=request.max_run_duration_seconds,
        source_path_part_ids=[str(x) for x in request.source_path_part_ids],
        instruction_path_part_ids=[str(x) for x in request.instruction_path_part_ids],
        output_path_part_ids=[str(x) for x in request.output_path_part_ids],
        template_path_part_id=str(request.template_path_part_id) if request.template_path_part_id else None,
        is_active=request.is_active, created_by=created_by, created_at=created_at, updated_at=clock.now(),
        schedule_cadence=schedule.cadence if schedule else None,
        schedule_start_at=schedule.start_at if schedule else None,
        schedule_timezone=schedule.timezone if schedule else None,
        schedule_overlap=request.schedule_overlap,
        retry_policy=request.retry_policy, heartbeat_timeout_seconds=request.heartbeat_timeout_seconds,
    )


def _sync_schedule(wanted: WorkflowDefinition | None, held: WorkflowDefinition | None) -> None:
    """Make Scheduler hold the schedule of `wanted` in place of the one `held` had (None: no definition)."""
    schedule = wanted.schedule if wanted else None
    if wanted is not None and schedule is not None:
        try:
            scheduler.put(wanted.tenant_id, wanted.id, schedule, enabled=wanted.is_active)
        except scheduler.ScheduleRefused as error:
            raise Invalid(["body", "schedule_timezone"], f"The scheduler refused this schedule: {error}",
                          "schedule.refused") from error
    elif held is not None and held.schedule is not None:
        scheduler.delete(held.id)


def _restore_schedule(wanted: WorkflowDefinition | None, held: WorkflowDefinition) -> None:
    """Undo a schedule change after the item write failed; the write's own error is what the caller sees."""
    try:
        _sync_schedule(wanted, held)
    except Exception:
        logger.exception("Schedule not restored", extra={"workflow_definition_id": held.id})


def create(principal: Principal, request: CreateWorkflowDefinitionRequest) -> WorkflowDefinition:
    now = clock.now()
    definition = _build(principal, request, str(uuid.uuid4()), principal.user_id, now)
    _sync_schedule(definition, None)
    try:
        _table().put_item(
            Item={**_key(principal.tenant_id, definition.id), **aws.as_item(definition.model_dump(mode="json"))},
            ConditionExpression="attribute_not_exists(pk)",
        )
    except BaseException:
        _restore_schedule(None, definition)
        raise
    return definition


def replace(principal: Principal, definition_id: str, request: CreateWorkflowDefinitionRequest) -> WorkflowDefinition:
    """PUT: every field is replaced (a runner must be sent again with its secret); run history stays."""
    current = get_visible(principal, definition_id)
    definition = _build(principal, request, definition_id, current.created_by, current.created_at).model_copy(
        update={"last_schedule_error": current.last_schedule_error})
    fields = aws.as_item(definition.model_dump(mode="json", exclude={
        "tenant_id", "id", "created_by", "created_at", "run_count", "runs_created", *_OCCURRENCE_FIELDS}))
    _sync_schedule(definition, current)
    try:
        _table().update_item(
            Key=_key(principal.tenant_id, definition_id),
            UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in fields),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={f"#{name}": name for name in fields},
            ExpressionAttributeValues={f":{name}": value for name, value in fields.items()},
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            _restore_schedule(None, definition)  # deleted meanwhile: its schedule goes too
            raise NotFound("Workflow definition not found") from error
        _restore_schedule(current, definition)
        raise
    except BaseException:
        _restore_schedule(current, definition)
        raise
    return definition


class WorkflowDefinitionOrder(StrEnum):
    """Sortable fields for workflow-definition listings (NAME ignores case)."""

    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"
    NAME = "NAME"


def _sort_key(order: WorkflowDefinitionOrder) -> Callable[[WorkflowDefinition], tuple[Any, str]]:
    """The field, then the id: equal values keep one order, so pages neither repeat nor skip a definition."""
    if order == WorkflowDefinitionOrder.NAME:
        return lambda d: (d.name.casefold(), d.id)
    if order == WorkflowDefinitionOrder.UPDATED_AT:
        return lambda d: (d.updated_at, d.id)
    return lambda d: (d.created_at, d.id)


def _matches(definition: WorkflowDefinition, folded_term: str) -> bool:
    return folded_term in definition.name.casefold() or folded_term in (definition.description or "").casefold()


def list_visible(principal: Principal, *, mine: bool = False, search: str | None = None,
                 within: Callable[[datetime, datetime], bool] | None = None,
                 order: WorkflowDefinitionOrder = WorkflowDefinitionOrder.CREATED_AT,
                 descending: bool = True) -> list[WorkflowDefinition]:
    """The caller's definitions, one Query then filtered and sorted in memory: O(definitions in the tenant)."""
    creator = principal.user_id if mine or not principal.is_admin else None
    found = _list(principal.tenant_id, creator)
    if search:
        folded = search.casefold()
        found = [d for d in found if _matches(d, folded)]
    if within is not None:
        found = [d for d in found if within(d.created_at, d.updated_at)]
    return sorted(found, key=_sort_key(order), reverse=descending)


def list_for_tenant(tenant_id: str) -> list[WorkflowDefinition]:
    """Every definition of the tenant, whoever may see it (for checks the system makes)."""
    return _list(tenant_id, None)


def _list(tenant_id: str, created_by: str | None) -> list[WorkflowDefinition]:
    query: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(f"TENANT#{tenant_id}") & Key("sk").begins_with("WORKFLOWDEF#"),
    }
    if created_by is not None:
        query["FilterExpression"] = Attr("created_by").eq(created_by)
    return [WorkflowDefinition.model_validate(item) for item in aws.query(_table(), query)]


def delete(principal: Principal, definition_id: str) -> None:
    """Refused while a run is open; otherwise the definition and all its runs go.

    The runs come from the index (which may lag) and are read again from the table, so the
    list is exact when its size matches `run_count`. The delete is conditional on both
    counters, so a run created or removed meanwhile makes it a 409 instead of an orphan.
    """
    definition = get_visible(principal, definition_id)
    run_count, runs_created = _run_counters(principal.tenant_id, definition_id)
    runs = run_store.reread(run_store.list_all_for_definition(definition_id))
    if len(runs) != run_count:
        raise Conflict("Runs of this definition are still being recorded; retry shortly")
    open_runs = [run for run in runs if not run.status.terminal]
    if open_runs:
        raise Conflict(f"Workflow definition has {len(open_runs)} run(s) still PENDING or RUNNING")
    try:
        _table().delete_item(Key=_key(principal.tenant_id, definition.id),
                             ConditionExpression="run_count = :count AND runs_created = :created",
                             ExpressionAttributeValues={":count": run_count, ":created": runs_created})
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise Conflict("The definition was invoked meanwhile; retry") from error
        raise
    run_store.delete_many(runs)
    try:
        _sync_schedule(None, definition)
    except Exception:
        logger.exception("Schedule of a deleted definition not removed; its next occurrence removes it",
                         extra={"workflow_definition_id": definition.id})


def _run_counters(tenant_id: str, definition_id: str) -> tuple[int, int]:
    """`run_count` (runs that exist) and `runs_created` (ever), read consistently."""
    item = _table().get_item(Key=_key(tenant_id, definition_id), ConsistentRead=True,
                             ProjectionExpression="run_count, runs_created").get("Item") or {}
    return int(item.get("run_count", 0)), int(item.get("runs_created", 0))


def secret_ciphertext_of(tenant_id: str, definition_id: str) -> str | None:
    """The definition's current webhook secret (encrypted), read fresh: rotation applies at once."""
    item = _table().get_item(Key=_key(tenant_id, definition_id), ConsistentRead=True,
                             ProjectionExpression="secret_ciphertext").get("Item")
    return item.get("secret_ciphertext") if item else None


def get(tenant_id: str, definition_id: str) -> WorkflowDefinition | None:
    """The definition as stored now, for the system's own checks (no visibility rule applies)."""
    item = _table().get_item(Key=_key(tenant_id, definition_id), ConsistentRead=True).get("Item")
    return WorkflowDefinition.model_validate(item) if item else None


def record_schedule_error(tenant_id: str, definition_id: str, error: ScheduleError) -> None:
    """Show on the definition why an occurrence made no run; nothing to do if it was deleted meanwhile."""
    try:
        _table().update_item(Key=_key(tenant_id, definition_id), UpdateExpression="SET last_schedule_error = :error",
                             ConditionExpression="attribute_exists(pk)",
                             ExpressionAttributeValues={":error": error.model_dump(mode="json")})
    except ClientError as failure:
        if failure.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def get_visible(principal: Principal, definition_id: str) -> WorkflowDefinition:
    """The definition if the caller may see it (its creator, or an OWNER/ADMIN); else 404."""
    return visible(principal, _table().get_item(Key=_key(principal.tenant_id, definition_id)).get("Item"))


def visible(principal: Principal, item: dict[str, Any] | None) -> WorkflowDefinition:
    """A definition item read by the caller, if the caller may see it; else 404."""
    if item is None:
        raise NotFound("Workflow definition not found")
    definition = WorkflowDefinition.model_validate(item)
    if not (principal.is_admin or definition.created_by == principal.user_id):
        raise NotFound("Workflow definition not found")
    return definition


def next_run_at(definition: WorkflowDefinition) -> datetime | None:
    schedule = definition.schedule
    return schedule.next_run_after(clock.now()) if schedule is not None and definition.is_active else None


def response(definition: WorkflowDefinition) -> WorkflowDefinitionResponse:
    return WorkflowDefinitionResponse.model_validate({
        **definition.model_dump(exclude={"runner_url", "secret_ciphertext", "run_count", "runs_created",
                                         "last_scheduled_run_id"}),
        "runner_config": {"url": definition.runner_url} if definition.runner_url else None,
        "next_run_at": next_run_at(definition),
    })
