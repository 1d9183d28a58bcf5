"""Run outcome metrics in the shape the dashboard and alarms read, and log lines that name only
their own request."""

from __future__ import annotations

import contextlib
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ksflow import catalog
from ksflow.api.handler import lambda_handler
from ksflow.identity.models import CreatedTenant
from ksflow.local import gateway
from ksflow.local.lambda_runtime import LocalContext, call_handler
from ksflow.observability import follow_run, logger, run_ended
from ksflow.workflows import runs
from ksflow.workflows.models import EndedBy, RunStatus, WorkflowRun
from tests import documents
from tests.conftest import Response, upload
from tests.unit.conftest import callback


def test_a_failed_run_counts_by_reason_with_its_duration(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    now = datetime.now(UTC)
    run = WorkflowRun.model_construct(id="run-1", status=RunStatus.FAILED, ended_by=EndedBy.TIMEOUT,
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
    run_ended(WorkflowRun.model_construct(id="run-1", status=RunStatus.COMPLETED, ended_by=EndedBy.CALLBACK,
                                          started_at=now, completed_at=now))
    assert capsys.readouterr().out == ""


def call_unserialized(method: str, path: str, body: str, headers: dict[str, str]) -> Response:
    """A request straight to the API handler, beside whatever another thread runs (as in the local stack)."""
    event = gateway.to_event(method, path, {"content-type": "application/json", **headers}, body.encode(), "127.0.0.1")
    result = lambda_handler(event, LocalContext(function_name="ksflow-Api", timeout_seconds=30))
    return Response(result["statusCode"], json.loads(result["body"]), result.get("headers") or {})


def failed_start_line(tenant: CreatedTenant, monkeypatch: pytest.MonkeyPatch, log_lines: list[str]) -> dict[str, Any]:
    """Upload while Step Functions refuses to start the ingestion; return the error line that request logs."""
    monkeypatch.setenv("INGESTION_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:000000000000:stateMachine:gone")
    already = len(log_lines)
    response = upload("/v1/documents/ingest", "notes.txt", b"text", tenant.api_key,
                      {"path_part_id": tenant.root_path_part_id})
    assert response.status == 201, response.body
    return next(line for line in map(json.loads, log_lines[already:])
                if line["message"] == "Ingestion execution not started")


def test_a_request_logs_no_key_of_an_earlier_run_or_ingestion(tenant: CreatedTenant, silent_run: dict[str, Any],
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              log_lines: list[str]) -> None:
    ingested = documents.ingest(tenant.root_path_part_id, "policy.md", documents.markdown(), tenant.api_key)
    assert documents.finished(ingested["workflow_id"], tenant.api_key)["status"] == "completed"
    completed = callback(silent_run["id"], {"status": "COMPLETED"}, secret=None, api_key=tenant.api_key)
    assert completed.status == 200, completed.body
    line = failed_start_line(tenant, monkeypatch, log_lines)
    assert "run_id" not in line and "tenant_id" not in line and "document_version_id" not in line, line


def test_concurrent_invocations_do_not_share_run_keys(tenant: CreatedTenant, silent_run: dict[str, Any],
                                                      monkeypatch: pytest.MonkeyPatch, log_lines: list[str]) -> None:
    """The local stack runs a callback and another request in one process at the same time."""
    followed, resume = threading.Event(), threading.Event()

    def follow_and_wait(run: WorkflowRun) -> None:
        follow_run(run)
        followed.set()
        assert resume.wait(10)
        logger.info("Callback resumed")  # a later line of the callback's invocation

    monkeypatch.setattr(runs, "follow_run", follow_and_wait)
    answers: list[Response] = []
    body = json.dumps({"status": "COMPLETED"})
    callback_thread = threading.Thread(target=lambda: answers.append(call_unserialized(
        "POST", f"/v1/workflow-runs/{silent_run['id']}/callback", body, {"authorization": f"Bearer {tenant.api_key}"})))
    callback_thread.start()
    try:
        assert followed.wait(10)
        other = failed_start_line(tenant, monkeypatch, log_lines)
    finally:
        resume.set()
        callback_thread.join(10)
    assert "run_id" not in other, other
    assert [answer.status for answer in answers] == [200]
    resumed = next(json.loads(line) for line in log_lines if json.loads(line)["message"] == "Callback resumed")
    assert resumed["run_id"] == silent_run["id"], "the other request cleared only its own keys"
    assert resumed["correlation_id"] != other["correlation_id"]


@pytest.mark.parametrize("handler_path", sorted(catalog.HANDLERS.values()))
def test_every_function_starts_each_invocation_with_a_clean_logger(handler_path: str) -> None:
    """A warm Lambda keeps the Logger: the keys an invocation starts with are the ones its lines carry."""
    logger.append_keys(run_id="earlier-run", tenant_id="earlier-tenant")
    logger.thread_safe_append_keys(run_id="earlier-run", correlation_id="earlier-request")
    with contextlib.suppress(Exception):  # an empty event is refused; the logger was set up before that
        call_handler(handler_path, {}, LocalContext(function_name="ksflow-Test", timeout_seconds=3))
    keys = {**logger.get_current_keys(), **logger.thread_safe_get_current_keys()}
    assert not {"earlier-run", "earlier-tenant", "earlier-request"} & {str(value) for value in keys.values()}, keys
