"""The ingestion state machine's Catch: the task crashed, timed out or hit an AWS error; record it.

(Files that cannot be read are recorded by the task itself; see `pipeline`.)
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ksflow.ingestion import store
from ksflow.observability import logger, metrics, tracer
from ksflow.orchestration.run_failure import error_message


def describe(failure: dict[str, Any]) -> str:
    error, cause = str(failure.get("Error", "")), str(failure.get("Cause", "") or "")
    if error == "States.Timeout":
        return "Ingestion exceeded its time limit"
    return f"Ingestion failed unexpectedly: {error}: {error_message(cause)}".strip()


def record_failure(tenant_id: str, document_version_id: str, execution_name: str, failure: dict[str, Any]) -> bool:
    failed = store.fail(tenant_id, document_version_id, execution_name, describe(failure))
    if failed:
        metrics.add_metric(name="IngestionsFailed", unit="Count", value=1)
    return failed


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, bool]:
    logger.thread_safe_append_keys(correlation_id=event["execution_name"])
    return {"failed": record_failure(event["tenant_id"], event["document_version_id"], event["execution_name"],
                                     event.get("failure") or {})}
