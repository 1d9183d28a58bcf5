"""Powertools logger, tracer and metrics shared by every function, and the run metrics.

A run's correlation id is the id of the API request that invoked it. The dispatcher, the
failure and expiry handlers and the callback log under it, so one search shows a run's
whole story.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

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
    outcome = EphemeralMetrics(namespace=NAMESPACE, service="ksflow")
    outcome.add_dimension("reason", run.ended_by.value if run.ended_by else "unknown")
    outcome.add_metric(name=name, unit=MetricUnit.Count, value=1)
    outcome.flush_metrics()
    if run.completed_at is not None:
        duration = EphemeralMetrics(namespace=NAMESPACE, service="ksflow")
        duration.add_dimension("status", run.status.value)
        duration.add_metric(name="RunDuration", unit=MetricUnit.Milliseconds,
                            value=(run.completed_at - run.started_at).total_seconds() * 1000)
        duration.flush_metrics()
