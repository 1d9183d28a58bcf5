"""Run outcome metrics, in the shape the dashboard and alarms read (namespace, dimensions)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ksflow.observability import run_ended
from ksflow.workflows.models import EndedBy, RunStatus, WorkflowRun


def test_a_failed_run_counts_by_reason_with_its_duration(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    now = datetime.now(UTC)
    run = WorkflowRun.model_construct(status=RunStatus.FAILED, ended_by=EndedBy.TIMEOUT,
                                      started_at=now - timedelta(seconds=3), completed_at=now)
    run_ended(run)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    failed = next(m for m in emitted if "RunsFailed" in m)
    assert failed["reason"] == "timeout" and failed["service"] == "ksflow" and failed["RunsFailed"] == [1.0]
    directive = failed["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "ksflow" and sorted(directive["Dimensions"][0]) == ["reason", "service"]
    duration = next(m for m in emitted if "RunDuration" in m)
    assert duration["status"] == "FAILED" and duration["RunDuration"] == [3000.0]


def test_nothing_is_printed_when_metrics_are_disabled(capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    run_ended(WorkflowRun.model_construct(status=RunStatus.COMPLETED, ended_by=EndedBy.CALLBACK,
                                          started_at=now, completed_at=now))
    assert capsys.readouterr().out == ""
