"""The deletion state machine's task: remove one bounded batch of a deleted part's subtree."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow.deletion import cascade
from ksflow.observability import logger, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.thread_safe_append_keys(path_part_id=event["path_part_id"])
    done = cascade.step(event["tenant_id"], event["path_part_id"])
    return {"tenant_id": event["tenant_id"], "path_part_id": event["path_part_id"], "done": done}
