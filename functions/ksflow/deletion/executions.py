"""The Step Functions executions of background deletions: one per deleted part."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from ksflow import aws
from ksflow.config import settings
from ksflow.knowledge.models import PathPart


def start(part: PathPart) -> None:
    """Named after the part, which is deleted once: a repeated start is harmless."""
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=settings().deletion_state_machine_arn, name=f"delete-{part.path_part_id}",
            input=json.dumps({"tenant_id": part.tenant_id, "path_part_id": part.path_part_id}))
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
