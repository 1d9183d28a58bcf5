"""The Step Functions executions of ingestions: start, stop and read one."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from ksflow import aws
from ksflow.config import settings
from ksflow.ingestion.models import Ingestion
from ksflow.observability import logger


def execution_arn(execution_name: str) -> str:
    machine = settings().ingestion_state_machine_arn
    return machine.replace(":stateMachine:", ":execution:") + ":" + execution_name


def start(ingestion: Ingestion) -> None:
    """Start the current attempt's execution; the name is per attempt, so a repeat start is harmless."""
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=settings().ingestion_state_machine_arn, name=ingestion.execution_name,
            # The first range has no cursor; each task returns the next one into `progress`.
            input=json.dumps({"tenant_id": ingestion.tenant_id, "document_version_id": ingestion.document_version_id,
                              "progress": {"cursor": None}}),
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise


def stop(ingestion: Ingestion, cause: str) -> None:
    """Best effort: the ingestion's status is already written, and tasks check it before each step."""
    try:
        aws.client("stepfunctions").stop_execution(executionArn=execution_arn(ingestion.execution_name),
                                                   error="IngestionCancelled", cause=cause)
    except ClientError as error:
        logger.info("Ingestion execution not stopped", extra={"workflow_id": ingestion.workflow_id,
                                                              "reason": error.response["Error"]["Code"]})


def describe(ingestion: Ingestion) -> dict[str, Any] | None:
    """The current attempt's execution as Step Functions reports it; None if it never started."""
    try:
        description: dict[str, Any] = aws.client("stepfunctions").describe_execution(
            executionArn=execution_arn(ingestion.execution_name))
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
            return None
        raise
    return description
