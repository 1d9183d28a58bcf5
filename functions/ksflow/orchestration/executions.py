"""Step Functions and EventBridge Scheduler calls for a run's execution and expiry schedule."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ksflow import aws
from ksflow.config import settings
from ksflow.observability import logger
from ksflow.workflows.models import workflow_id_for


def execution_arn(run_id: str) -> str:
    machine = settings().run_state_machine_arn
    return machine.replace(":stateMachine:", ":execution:") + ":" + workflow_id_for(run_id)


def start(run_id: str, timeout_seconds: int) -> None:
    """Start the run's execution; its name is the workflow id, so a repeat start is harmless."""
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=settings().run_state_machine_arn, name=workflow_id_for(run_id),
            input=json.dumps({"run_id": run_id, "timeout_seconds": max(1, timeout_seconds)}),
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise


def stop(run_id: str, cause: str) -> None:
    """Best effort: the run's terminal status is already written."""
    try:
        aws.client("stepfunctions").stop_execution(executionArn=execution_arn(run_id), error="RunEnded",
                                                   cause=cause[:32768])
    except ClientError as error:
        logger.info("Execution not stopped", extra={"run_id": run_id, "reason": error.response["Error"]["Code"]})


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


def _schedule_name(run_id: str) -> str:
    return f"run-expiry-{run_id}"


def schedule_expiry(run_id: str, at: datetime) -> None:
    """A one-off schedule that fails the run if it is somehow still open after its deadline."""
    config = settings()
    target: dict[str, Any] = {"Arn": config.expiry_function_arn, "RoleArn": config.scheduler_role_arn,
                              "Input": json.dumps({"run_id": run_id}),
                              "RetryPolicy": {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}}
    if config.scheduler_dlq_arn:
        target["DeadLetterConfig"] = {"Arn": config.scheduler_dlq_arn}
    aws.client("scheduler").create_schedule(
        Name=_schedule_name(run_id), GroupName=config.scheduler_group_name,
        ScheduleExpression=f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})", ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"}, ActionAfterCompletion="DELETE", Target=target,
    )


def delete_expiry(run_id: str) -> None:
    try:
        aws.client("scheduler").delete_schedule(Name=_schedule_name(run_id),
                                                GroupName=settings().scheduler_group_name)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            logger.warning("Expiry schedule not deleted", extra={"run_id": run_id})


def expiry_time(deadline: datetime) -> datetime:
    return deadline + timedelta(seconds=settings().expiry_grace_seconds)
