"""Powertools logger, tracer and metrics shared by every function, and the run metrics.

A run's correlation id is the id of the API request that invoked it. The dispatcher, the
failure and expiry handlers and the callback log under it, so one search shows a run's
whole story.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

if TYPE_CHECKING:
    from ksflow.workflows.models import WorkflowRun

NAMESPACE = "ksflow"
logger = Logger(service="ksflow")
tracer = Tracer(service="ksflow")
metrics = Metrics(namespace=NAMESPACE, service="ksflow")


def follow_run(run: WorkflowRun) -> None:
    """Log the rest of this invocation under the run's correlation id."""
    logger.set_correlation_id(run.correlation_id or run.id)
    logger.append_keys(run_id=run.id)


def run_ended(run: WorkflowRun) -> None:
    """RunsCompleted or RunsFailed by who ended the run (callback, timeout, dispatch, ...) and its duration."""
    name = "RunsCompleted" if run.status.value == "COMPLETED" else "RunsFailed"
    reason = run.ended_by.value if run.ended_by else "unknown"
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as metric:
        metric.add_dimension("reason", reason)
    if run.completed_at is not None:
        duration = (run.completed_at - run.started_at).total_seconds() * 1000
        with single_metric(name="RunDuration", unit=MetricUnit.Milliseconds, value=duration,
                           namespace=NAMESPACE) as metric:
            metric.add_dimension("status", run.status.value)
