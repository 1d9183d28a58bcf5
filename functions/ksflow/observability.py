"""Powertools logger, tracer and metrics shared by every function, and the run metrics.

A run's correlation id is the id of the API request that invoked it. The dispatcher, the
failure and expiry handlers and the callback log under it, so one search shows a run's
whole story.

Every handler clears the logger's state when it starts (`clear_state=True`): a warm Lambda
keeps the Logger between invocations, so keys appended for one would reach the next.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from ksflow.ingestion.models import IngestionStatus

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

    from ksflow.ingestion.models import Ingestion
    from ksflow.workflows.models import WorkflowRun

# Set per deployment, so two environments in one account never share a metric.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "ksflow")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ksflow")
# What the X-Ray SDK instruments: AWS calls, and plain HTTP (runner dispatches). Patching everything it
# knows imports a dozen libraries at every cold start.
TRACED_MODULES = ("botocore", "httplib")


class _LazyTracer:
    """Powertools' Tracer, created when a handler first runs instead of when it is imported.

    Creating it imports the X-Ray SDK and patches botocore and http.client: part of a traced cold start,
    but nothing that importing a handler (the local stack, tests, the CLI) should pay for.
    """

    @functools.cached_property
    def _tracer(self) -> Tracer:
        from aws_lambda_powertools import Tracer

        return Tracer(service=SERVICE, patch_modules=TRACED_MODULES)

    def capture_lambda_handler(self, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        traced: Callable[[Any, Any], Any] | None = None

        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            nonlocal traced
            if traced is None:
                traced = self._tracer.capture_lambda_handler(handler)
            return traced(event, context)

        return run


logger = Logger(service=SERVICE)
tracer = _LazyTracer()
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def follow_run(run: WorkflowRun) -> None:
    """Log the rest of this invocation under the run's correlation id.

    Thread-local keys, so invocations sharing a process at the same time (the local stack) do
    not tag each other's lines; `clear_state=True` on every handler drops them at the next one.
    """
    logger.thread_safe_append_keys(correlation_id=run.correlation_id or run.id, run_id=run.id)


def run_ended(run: WorkflowRun) -> None:
    """Log the ending, and count RunsCompleted or RunsFailed by who ended the run (callback, timeout,
    dispatch, ...) and its duration: every ending passes through here once, so nothing is told twice."""
    logger.info("Run ended", extra={"run_id": run.id, "status": run.status.value,
                                    "ended_by": run.ended_by.value if run.ended_by else None, "error": run.error})
    name = "RunsCompleted" if run.status.value == "COMPLETED" else "RunsFailed"
    outcome = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    outcome.add_dimension("reason", run.ended_by.value if run.ended_by else "unknown")
    outcome.add_metric(name=name, unit=MetricUnit.Count, value=1)
    outcome.flush_metrics()
    if run.completed_at is not None:
        duration = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
        duration.add_dimension("status", run.status.value)
        duration.add_metric(name="RunDuration", unit=MetricUnit.Milliseconds,
                            value=(run.completed_at - run.started_at).total_seconds() * 1000)
        duration.flush_metrics()


def ingestion_changed(ingestion: Ingestion) -> None:
    """One line per status an ingestion takes (processing, completed, failed, cancelled, pending for a rerun)."""
    logger.info("Ingestion status changed", extra={
        "document_version_id": ingestion.document_version_id, "file_name": ingestion.file_name,
        "status": ingestion.status.value, "attempt": ingestion.attempt, "error": ingestion.error,
        "chunks_processed": ingestion.chunks_processed if ingestion.status == IngestionStatus.COMPLETED else None})
