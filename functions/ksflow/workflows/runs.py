"""Invoking a definition, reading runs, and the runner's callback (and how runners authenticate)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from ksflow import clock
from ksflow.errors import Conflict, Invalid, NotFound, Unauthorized, Unavailable
from ksflow.identity import store as identity
from ksflow.identity.models import Principal
from ksflow.knowledge import store as knowledge
from ksflow.knowledge.models import PathPart
from ksflow.lifecycle import attempts, events
from ksflow.lifecycle.events import RunEventType
from ksflow.observability import follow_run, logger, metrics
from ksflow.orchestration import executions
from ksflow.workflows import definitions, run_store, secrets, snapshots, webhooks
from ksflow.workflows.models import (
    CallbackRequest,
    EndedBy,
    PathSnapshot,
    RunSnapshot,
    RunStatus,
    RunTrigger,
    WorkflowDefinition,
    WorkflowRun,
)


class IdempotencyKeyBusy(Conflict):
    """Another request with the same idempotency key is creating its run right now."""

    def __init__(self) -> None:
        super().__init__("A concurrent request with this idempotency key is being processed; retry")


def _snapshot(principal: Principal, definition: WorkflowDefinition) -> RunSnapshot:
    """Resolve every reference now, as the definition's creator sees it: a vanished or unreadable one is 409.

    Judging by the creator (not only the invoker) keeps a USER's runs free of paths that USER
    cannot read, whoever invokes its definition.
    """
    template = [definition.template_path_part_id] if definition.template_path_part_id else []
    ids = [*definition.source_path_part_ids, *definition.instruction_path_part_ids,
           *definition.output_path_part_ids, *template]
    access = definitions.creator_access(principal, definition.created_by)
    if access is None:
        raise Conflict("The workflow definition's creator no longer exists")
    parts = knowledge.get_path_parts(principal.tenant_id, ids)

    def resolve(path_part_id: str, role: str) -> PathSnapshot:
        part: PathPart | None = parts.get(path_part_id)
        if part is None or not access.can_read(part):
            raise Conflict(f"The {role} path part {path_part_id} no longer exists or is not readable "
                           "by the definition's creator")
        if role == "output" and not access.can_write(part):
            raise Conflict(f"The output path part {path_part_id} is not writable by the definition's creator")
        return PathSnapshot(path_part_id=part.path_part_id, materialized_path=part.materialized_path,
                            part_type=part.part_type)

    return RunSnapshot(
        workflow_definition_id=definition.id, workflow_name=definition.name,
        user_id=principal.user_id, max_run_duration_seconds=definition.max_run_duration_seconds,
        sources=[resolve(pp, "source") for pp in definition.source_path_part_ids],
        instructions=[resolve(pp, "instruction") for pp in definition.instruction_path_part_ids],
        outputs=[resolve(pp, "output") for pp in definition.output_path_part_ids],
        template=resolve(template[0], "template") if template else None,
    )


def _new_run(principal: Principal, definition: WorkflowDefinition, idempotency_key: str | None,
             occurrence: datetime | None) -> WorkflowRun:
    """A PENDING run of an active definition with a runner; its references checked and frozen."""
    if not definition.is_active:
        raise Conflict("Workflow definition is not active")
    if definition.runner_url is None or definition.secret_ciphertext is None:
        raise Conflict("Workflow definition has no runner configured")
    snapshot = _snapshot(principal, definition)
    now = clock.now()
    return WorkflowRun(
        tenant_id=principal.tenant_id, id=str(uuid.uuid4()), workflow_definition_id=definition.id,
        definition_owner_id=definition.created_by, user_id=principal.user_id, status=RunStatus.PENDING,
        started_at=now, deadline=now + timedelta(seconds=definition.max_run_duration_seconds),
        run_snapshot=snapshot, runner_url=definition.runner_url, secret_ciphertext=definition.secret_ciphertext,
        idempotency_key=idempotency_key, correlation_id=logger.get_correlation_id(),
        trigger=RunTrigger.MANUAL if occurrence is None else RunTrigger.SCHEDULE, scheduled_for=occurrence,
        created_at=now, updated_at=now, retry_policy=definition.retry_policy,
        heartbeat_timeout_seconds=definition.heartbeat_timeout_seconds,
    )


def _start(run: WorkflowRun) -> None:
    """Start the execution of the run's attempt (idempotent by name), with the seconds left until its deadline."""
    executions.start(run, clock.now())


def _replay(definition: WorkflowDefinition, run_id: str) -> WorkflowRun:
    """The run an idempotency key made. One that nothing started yet (a crash after writing it) starts now."""
    run = run_store.get(run_id)
    if run is None:
        raise IdempotencyKeyBusy
    if run.status == RunStatus.PENDING and run.task_token is None:
        _start(run)
    return run_store.with_snapshot(run)


def invoke(principal: Principal, definition_id: str, idempotency_key: str | None,
           occurrence: datetime | None = None) -> WorkflowRun:
    """Create a PENDING run and start its execution; a known idempotency key returns its run.

    The key is looked up first (in the same read as the definition), so a retry is answered
    with its run even if the definition changed since (deactivated, runner removed).
    `occurrence` is the schedule occurrence the run is for; None when a user invoked it.
    """
    item, claimed = run_store.definition_and_claim(principal.tenant_id, definition_id, idempotency_key)
    definition = definitions.visible(principal, item)
    if claimed is not None:
        return _replay(definition, claimed)
    run = _new_run(principal, definition, idempotency_key, occurrence)
    # The expiry schedule exists before the run does, so no crash can leave the run open for good.
    executions.schedule_expiry(run.id, run.attempt, executions.expiry_time(run.deadline))
    try:
        run = run_store.insert(run)
    except run_store.DefinitionGone:
        executions.delete_expiry(run.id, run.attempt)
        raise NotFound("Workflow definition not found") from None
    except run_store.DuplicateIdempotencyKey:
        executions.delete_expiry(run.id, run.attempt)
        winner = run_store.claimed_run_id(definition.id, idempotency_key or "")
        if winner is None:
            raise IdempotencyKeyBusy from None
        return _replay(definition, winner)
    except BaseException:
        executions.delete_expiry(run.id, run.attempt)
        raise
    try:
        _start(run)
    except Exception as error:
        _withdraw(run)
        raise Unavailable("The workflow run could not be started; retry the request") from error
    metrics.add_metric(name="RunsInvoked", unit=MetricUnit.Count, value=1)
    logger.info("Run invoked", extra={"run_id": run.id, "workflow_definition_id": definition.id,
                                      "tenant_id": principal.tenant_id, "user_id": principal.user_id})
    return run


def _withdraw(run: WorkflowRun) -> None:
    """Undo a run whose execution did not start, so a retry makes a fresh one.

    If this fails too, the run stays PENDING: a retry with its idempotency key starts it, and
    its expiry schedule fails it at the deadline otherwise.
    """
    logger.exception("Run execution did not start", extra={"run_id": run.id})
    try:
        run_store.delete(run)
        executions.delete_expiry(run.id, run.attempt)
    except Exception:
        logger.exception("Run not withdrawn", extra={"run_id": run.id})


def _visible(principal: Principal, run: WorkflowRun | None) -> WorkflowRun:
    if run is None or run.tenant_id != principal.tenant_id:
        raise NotFound("Workflow run not found")
    if not (principal.is_admin or principal.user_id in (run.definition_owner_id, run.user_id)):
        raise NotFound("Workflow run not found")
    return run


def get_visible(principal: Principal, run_id: str) -> WorkflowRun:
    return _visible(principal, run_store.get(run_id))


def get_for_response(principal: Principal, run_id: str) -> WorkflowRun:
    """A visible run with its whole snapshot, as responses show it."""
    return run_store.with_snapshot(get_visible(principal, run_id))


# A page of runs stays well under Lambda's 6 MB response limit, base64 inflation included.
RESPONSE_BUDGET_BYTES = 4 * 1024 * 1024
# What a run's response holds besides its snapshot, at most (error text, URLs, timestamps).
_RUN_FIELDS_BYTES = 48 * 1024
# An earlier attempt in `attempts`, at most (its error is cut to `run_store.HISTORY_ERROR_CHARS`).
_ATTEMPT_BYTES = 4 * run_store.HISTORY_ERROR_CHARS + 256


def fit_response_budget(page: list[WorkflowRun]) -> list[WorkflowRun]:
    """As many runs of the page as fit the budget, at least one; their snapshots loaded.

    Sizes come from the items (a snapshot kept in S3 records its size), so a page of large
    runs costs S3 reads only for the runs it returns.
    """
    fitted: list[WorkflowRun] = []
    used = 0
    for run in page:
        size = (_RUN_FIELDS_BYTES + (run.snapshot_bytes or snapshots.INLINE_LIMIT_BYTES)
                + _ATTEMPT_BYTES * len(run.attempts))
        if fitted and used + size > RESPONSE_BUDGET_BYTES:
            break
        fitted.append(run_store.with_snapshot(run))
        used += size
    return fitted


def open_runs_writing_to(tenant_id: str, path_part_ids: set[str]) -> list[WorkflowRun]:
    """PENDING/RUNNING runs of the tenant with one of these path parts among their snapshot's outputs.

    Reads only the tenant's open runs (`run_store.list_open_for_tenant`), whose items hold their outputs;
    a run written before `output_ids` with its snapshot in S3 costs that snapshot's read. Until the
    `runs-by-status` index is deployed, each definition's open runs are read instead.
    """
    candidates = run_store.list_open_for_tenant(tenant_id)
    if candidates is None:
        candidates = [(run, None) for definition in definitions.list_for_tenant(tenant_id) if definition.run_count
                      for run in run_store.list_open_for_definition(definition.id)]
    return [run for run, output_ids in candidates
            if path_part_ids.intersection(_output_ids(run) if output_ids is None else output_ids)]


def _output_ids(run: WorkflowRun) -> list[str]:
    snapshot = run_store.with_snapshot(run).run_snapshot
    return [str(output.path_part_id) for output in snapshot.outputs] if snapshot else []


def delete(principal: Principal, run_id: str) -> None:
    """Remove the record and free its idempotency key; an execution still going is left alone."""
    if not run_store.delete(get_visible(principal, run_id)):
        raise NotFound("Workflow run not found")


def _verified_message(run: WorkflowRun, headers: Mapping[str, str], body: str, *,
                      trust_run_secret: bool) -> run_store.SignedMessage:
    """The message, if signed with the definition's secret; checking the run's copy first saves a read.

    The run keeps the secret it was invoked under; whether that is still the definition's current
    one is checked when the message is written, so a rotated secret stops working at once.
    """
    message_id = webhooks.message_id(headers)

    def signed_with(ciphertext: str | None) -> bool:
        return bool(message_id and ciphertext) and webhooks.verify(
            secrets.decrypt(ciphertext or "", run.tenant_id, run.workflow_definition_id), headers, body)

    if trust_run_secret and signed_with(run.secret_ciphertext):
        return run_store.SignedMessage(message_id=message_id or "", secret_ciphertext=run.secret_ciphertext)
    current = definitions.secret_ciphertext_of(run.tenant_id, run.workflow_definition_id)
    if current is not None and (current != run.secret_ciphertext or not trust_run_secret) and signed_with(current):
        return run_store.SignedMessage(message_id=message_id or "", secret_ciphertext=current)
    raise Unauthorized("Invalid webhook signature")


def reverify(run: WorkflowRun, headers: Mapping[str, str], body: str) -> run_store.SignedMessage:
    """After `SecretRotated`: the message again, verified with the definition's current secret only."""
    return _verified_message(run, headers, body, trust_run_secret=False)


def runner_message(run_id: str, headers: Mapping[str, str], body: str,
                   api_key: str | None) -> tuple[WorkflowRun, run_store.SignedMessage | None]:
    """The run a runner's message (callback or heartbeat) is for, and the message if it was signed.

    A runner signs with the definition's webhook secret; a user who can see the run may
    present an API key instead (None: nothing to claim).
    """
    if not (webhooks.has_signature(headers) or api_key is not None):
        raise Unauthorized("Callback must carry a valid webhook signature or API key")
    run = run_store.get(run_id)
    if run is None:
        raise NotFound("Workflow run not found")
    follow_run(run)
    if webhooks.has_signature(headers):
        return run, _verified_message(run, headers, body, trust_run_secret=True)
    principal = identity.authenticate(api_key) if api_key else None
    if principal is None:
        raise Unauthorized("Callback must carry a valid webhook signature or API key")
    _visible(principal, run)
    return run, None


class CallbackConflict(Conflict):
    def __init__(self, run: WorkflowRun) -> None:
        reason = f": {run.error}" if run.error else ""
        super().__init__(f"Workflow run already ended with status {run.status.value}{reason}")


class StaleAttempt(Conflict):
    """A runner's message for an attempt the run has moved past: the runner should stop."""

    def __init__(self, attempt: int, run: WorkflowRun) -> None:
        super().__init__(f"Attempt {attempt} of this workflow run is no longer current "
                         f"(the run is at attempt {run.attempt}, {run.status.value})")


def check_attempt(run: WorkflowRun, attempt: int | None) -> None:
    """A message naming an attempt applies to that attempt only; without one, to the current attempt."""
    if attempt is not None and attempt != run.attempt:
        raise StaleAttempt(attempt, run)


def claimed_elsewhere(replayed: run_store.MessageReplayed, run: WorkflowRun) -> Exception:
    """A signed message already accepted for another run is refused; for another attempt of this one, stale."""
    if replayed.claimed_attempt is None:
        return Unauthorized("This signed message was already accepted for another workflow run")
    return StaleAttempt(replayed.claimed_attempt, run)


def _outcome(run: WorkflowRun, requested: RunStatus) -> RunStatus:
    """A repeat of the runner's own report is accepted; anything else after the end conflicts."""
    if run.status == requested and run.ended_by == EndedBy.CALLBACK:
        return run.status
    raise CallbackConflict(run)


def _end_for_time_limit(run: WorkflowRun) -> WorkflowRun | None:
    """A callback past the deadline loses even if the timer has not fired yet: the attempt fails now."""
    message = attempts.time_limit_error(run.max_run_duration_seconds,
                                        "; the runner's callback came after the deadline")
    ending = attempts.failure(run, message, EndedBy.TIMEOUT, execution_waits=run.task_token is not None)
    ended = run_store.end_attempt(run, ending)
    if ended is not None:
        attempts.release(ended, run.task_token)
    return ended


class _RunChanged(Exception):
    """The run changed between reading and writing it (it ended, or got a new task token)."""


def _apply_report(run: WorkflowRun, request: CallbackRequest, signed: run_store.SignedMessage | None) -> RunStatus:
    requested = RunStatus(request.status)
    if run.status.terminal:
        if signed is not None:
            run_store.bind_message(run, signed)
        return _outcome(run, requested)
    if clock.now() > run.deadline:
        ended = _end_for_time_limit(run)
        if ended is None:
            raise _RunChanged
        raise CallbackConflict(ended) if ended.status.terminal else Conflict(
            f"Attempt {run.attempt} exceeded its time limit before the callback; attempt {ended.attempt} is scheduled")
    if requested == RunStatus.COMPLETED:
        ending = run_store.Ending(RunStatus.COMPLETED, None, EndedBy.CALLBACK)
    else:
        ending = attempts.failure(run, request.error or "Runner reported failure", EndedBy.CALLBACK,
                                  execution_waits=run.task_token is not None)
    reported = events.new(RunEventType.CALLBACK, run.attempt, {
        "status": requested.value, "error": request.error,
        "authenticated_by": "signature" if signed is not None else "api_key"})
    finished = run_store.end_attempt(run, ending, reported=reported, signed=signed)
    if finished is None:
        raise _RunChanged
    attempts.release(finished, run.task_token)
    return finished.status


# Each retry follows a concurrent change (a new task token, a rotated secret); a few always suffice.
_CALLBACK_ATTEMPTS = 4


def callback(run_id: str, headers: Mapping[str, str], body: str, api_key: str | None,
             attempt: int | None = None) -> RunStatus:
    run, signed = runner_message(run_id, headers, body, api_key)
    try:
        request = CallbackRequest.model_validate_json(body or "")
    except ValidationError as error:
        raise Invalid.from_validation(error) from None
    for _ in range(_CALLBACK_ATTEMPTS):
        check_attempt(run, attempt)
        try:
            return _apply_report(run, request, signed)
        except run_store.MessageReplayed as replayed:
            raise claimed_elsewhere(replayed, run) from None
        except run_store.SecretRotated:
            signed = reverify(run, headers, body)
        except _RunChanged:
            latest = run_store.get(run_id)
            if latest is None:
                raise NotFound("Workflow run not found") from None
            run = latest
    raise Conflict("The workflow run is changing; retry the callback")
