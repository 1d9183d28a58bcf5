"""Step Functions and EventBridge Scheduler calls for a run's execution and expiry schedule."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ksflow import aws
from ksflow.config import settings
from ksflow.observability import logger
from ksflow.workflows.models import WorkflowRun

# The named error that hands a failed attempt back to its execution, which then plans the retry.
ATTEMPT_FAILED = "AttemptFailed"


def execution_arn(execution_name: str) -> str:
    machine = settings().run_state_machine_arn
    return machine.replace(":stateMachine:", ":execution:") + ":" + execution_name


def attempt_state(run: WorkflowRun, now: datetime, wait_seconds: int | None = None) -> dict[str, Any]:
    """The state machine's state for the run's current attempt: the wait before its dispatch, and its timers.

    Its heartbeat timer cannot be left out (`HeartbeatSecondsPath` takes no null) and must be
    shorter than the timeout. So the heartbeat timer is the definition's heartbeat timeout, at
    most the time then left until the attempt's deadline, and the task's timeout is a second
    longer: without a heartbeat timeout the heartbeat timer is the deadline, never earlier.
    """
    wait = max(0, math.ceil((run.started_at - now).total_seconds())) if wait_seconds is None else wait_seconds
    left = max(1, math.ceil((run.deadline - now).total_seconds()) - wait)
    heartbeat = min(run.heartbeat_timeout_seconds or left, left)
    timeout = left + 1
    return {"run_id": run.id, "attempt": run.attempt, "wait_seconds": wait, "timeout_seconds": timeout,
            "heartbeat_seconds": heartbeat}


def start(run: WorkflowRun, now: datetime) -> None:
    """Start the execution of the run's current attempt; names are per execution, so a repeat start is harmless."""
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=settings().run_state_machine_arn, name=run.execution_name,
            input=json.dumps(attempt_state(run, now, wait_seconds=0)),
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise


def stop(execution_name: str, cause: str) -> None:
    """Best effort: the run's terminal status is already written."""
    try:
        aws.client("stepfunctions").stop_execution(executionArn=execution_arn(execution_name), error="RunEnded",
                                                   cause=cause[:32768])
    except ClientError as error:
        logger.info("Execution not stopped", extra={"execution": execution_name,
                                                    "reason": error.response["Error"]["Code"]})


def answer_task(task_token: str, output: dict[str, Any]) -> None:
    """Let the waiting execution finish; a token that already expired is fine to ignore."""
    try:
        aws.client("stepfunctions").send_task_success(taskToken=task_token, output=json.dumps(output))
    except ClientError as error:
        logger.info("Task token not answered", extra={"reason": error.response["Error"]["Code"]})


def fail_task(task_token: str, error: str) -> None:
    """Fail the waiting task with a named error for the state machine to catch (no Lambda error raised)."""
    try:
        aws.client("stepfunctions").send_task_failure(taskToken=task_token, error=error)
    except ClientError as failure:
        logger.info("Task token not failed", extra={"reason": failure.response["Error"]["Code"]})


def heartbeat(task_token: str) -> None:
    """Restart the task's heartbeat timer; a token that ended meanwhile is fine to ignore."""
    try:
        aws.client("stepfunctions").send_task_heartbeat(taskToken=task_token)
    except ClientError as error:
        logger.info("Task heartbeat not sent", extra={"reason": error.response["Error"]["Code"]})


def _schedule_name(run_id: str, attempt: int) -> str:
    return f"run-expiry-{run_id}" + (f"-{attempt}" if attempt > 1 else "")


def schedule_expiry(run_id: str, attempt: int, at: datetime) -> None:
    """A one-off schedule that fails the run if its attempt is somehow still open after its deadline."""
    config = settings()
    target: dict[str, Any] = {"Arn": config.expiry_function_arn, "RoleArn": config.scheduler_role_arn,
                              "Input": json.dumps({"run_id": run_id}),
                              "RetryPolicy": {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}}
    if config.scheduler_dlq_arn:
        target["DeadLetterConfig"] = {"Arn": config.scheduler_dlq_arn}
    aws.client("scheduler").create_schedule(
        Name=_schedule_name(run_id, attempt), GroupName=config.scheduler_group_name,
        ScheduleExpression=f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})", ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"}, ActionAfterCompletion="DELETE", Target=target,
    )


def move_expiry(run_id: str, attempt: int, deadline: datetime) -> None:
    """The expiry schedule of the attempt that follows `attempt - 1`: the earlier one goes, the new one
    is made (one left by an earlier try of the same change is kept)."""
    delete_expiry(run_id, attempt - 1)
    try:
        schedule_expiry(run_id, attempt, expiry_time(deadline))
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConflictException":
            raise


def delete_expiry(run_id: str, attempt: int) -> None:
    try:
        aws.client("scheduler").delete_schedule(Name=_schedule_name(run_id, attempt),
                                                GroupName=settings().scheduler_group_name)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            logger.warning("Expiry schedule not deleted", extra={"run_id": run_id})


def expiry_time(deadline: datetime) -> datetime:
    return deadline + timedelta(seconds=settings().expiry_grace_seconds)
