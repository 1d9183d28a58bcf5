"""The local stack's readable log: one line per request and per run or ingestion change, each naming its own run."""

from __future__ import annotations

import functools
import http.client
import io
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ksflow.identity.models import CreatedTenant
from ksflow.local import console, gateway
from ksflow.observability import logger
from tests import documents
from tests.conftest import RUNNER_SECRET, Runner, call_api, wait_for
from tests.unit.conftest import get_run


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def collect(formatter: logging.Formatter) -> Iterator[list[str]]:
    """Every line the service logs while the caller runs, as `formatter` writes it, without its timestamp."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record).split(" ", 1)[1])

    handler = Collect()
    handler.setFormatter(formatter)
    target = logging.getLogger(logger.name)
    target.addHandler(handler)
    yield lines
    target.removeHandler(handler)


@pytest.fixture
def readable() -> Iterator[list[str]]:
    yield from collect(console.readable_formatter(colour=False))


@pytest.fixture
def restore_formatter() -> Iterator[None]:
    original = logger.registered_handler.formatter
    yield
    logger.registered_handler.setFormatter(original)


@pytest.fixture
def run_keys() -> Iterator[Callable[[str], None]]:
    """Follow a run on this thread as a handler does; the keys are cleared after the test."""
    def follow(run_id: str) -> None:
        logger.thread_safe_append_keys(run_id=run_id)

    yield follow
    logger.thread_safe_clear_keys()


def test_dispatch_attempts_are_numbered_per_run_as_they_happen(readable: list[str],
                                                               run_keys: Callable[[str], None]) -> None:
    run_keys("aaaaaaaa-1111")
    logger.info("Dispatch will be retried", extra={"reason": "Runner answered HTTP 503"})
    run_keys("bbbbbbbb-2222")
    logger.info("Dispatch accepted")
    run_keys("aaaaaaaa-1111")
    logger.info("Dispatch will be retried", extra={"reason": "Runner unreachable: timed out"})
    logger.warning("Dispatch failed", extra={"reason": "Runner answered HTTP 404"})
    assert readable == [
        "run aaaaaaaa… dispatch attempt 1 failed: Runner answered HTTP 503; will be retried",
        "run bbbbbbbb… dispatch attempt 1 accepted",
        "run aaaaaaaa… dispatch attempt 2 failed: Runner unreachable: timed out; will be retried",
        "run aaaaaaaa… dispatch attempt 3 failed: Runner answered HTTP 404",
    ]


def test_other_lines_keep_their_level_subject_and_added_keys(readable: list[str],
                                                             run_keys: Callable[[str], None]) -> None:
    run_keys("cccccccc-3333")
    logger.warning("Run expired by its schedule", extra={"status_before": "RUNNING"})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("Unhandled error")
    assert readable[0] == "WARNING run cccccccc… Run expired by its schedule status_before=RUNNING"
    assert readable[1].startswith("ERROR run cccccccc… Unhandled error\nTraceback")
    assert "ValueError: boom" in readable[1]


def test_colours_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert console.colour_wanted(Terminal()) and not console.colour_wanted(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not console.colour_wanted(Terminal())
    line = console.ReadableLines(colour=True)({"timestamp": "12:00:00", "message": "Run ended", "run_id": "dddddddd-4",
                                               "status": "COMPLETED", "ended_by": "callback"})
    assert "\x1b[32mCOMPLETED\x1b[0m" in line


def test_readable_is_the_default_on_a_terminal_and_json_keeps_powertools(monkeypatch: pytest.MonkeyPatch,
                                                                          restore_formatter: None) -> None:
    assert console.default_format(Terminal()) == "readable" and console.default_format(io.StringIO()) == "json"
    original = logger.registered_handler.formatter
    console.install("json")
    assert logger.registered_handler.formatter is original
    monkeypatch.setattr("sys.stdout", Terminal())
    console.install(None)
    installed = logger.registered_handler.formatter
    assert installed is not original and isinstance(installed.json_serializer, console.ReadableLines)  # type: ignore[union-attr]
    logger.thread_safe_append_keys(run_id="eeeeeeee-5")  # the handlers' key calls reach the new formatter
    logger.thread_safe_clear_keys()


def test_two_runs_at_once_each_line_names_its_own_run(tenant: CreatedTenant, api_server: str,
                                                      runner_factory: Callable[..., Runner],
                                                      create_definition: Callable[..., dict[str, Any]],
                                                      readable: list[str]) -> None:
    completing = create_definition(runner_factory().url, name="Completes")
    failing = create_definition(runner_factory(fail=True).url, name="Fails")
    invoked: dict[str, str] = {}

    def invoke(definition: dict[str, Any]) -> None:
        response = call_api("POST", f"/v1/workflow-definitions/{definition['id']}/invoke", {}, tenant.api_key)
        invoked[definition["name"]] = response.body["id"]

    threads = [threading.Thread(target=invoke, args=(d,)) for d in (completing, failing)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    def ended(run_id: str) -> bool:
        return get_run(run_id, tenant.api_key)["status"] in ("COMPLETED", "FAILED")

    for run_id in invoked.values():
        wait_for(functools.partial(ended, run_id))

    def story(run_id: str) -> list[str]:
        return [line for line in readable if line.startswith(f"run {run_id[:8]}…")]

    completed, failed = invoked["Completes"], invoked["Fails"]
    assert story(completed) == [f"run {completed[:8]}… {event}" for event in (
        "invoked by owner@acme.test", "dispatch attempt 1 accepted", "RUNNING", "COMPLETED (callback)")]
    assert story(failed) == [f"run {failed[:8]}… {event}" for event in (
        "invoked by owner@acme.test", "dispatch attempt 1 accepted", "RUNNING",
        "FAILED (callback): Example runner was asked to fail")]

    def callbacks() -> list[list[str]]:
        return sorted(line.split(" ")[1:3] for line in readable if line.startswith("POST /v1/workflow-runs/"))

    # The gateway logs a request once its answer is sent: the runner may hold the 200 a moment before.
    expected = sorted([f"/v1/workflow-runs/{run_id}/callback", "200"] for run_id in invoked.values())
    wait_for(lambda: len(callbacks()) >= len(expected))
    assert callbacks() == expected
    assert not any(secret in line for line in readable for secret in (RUNNER_SECRET, tenant.api_key))


def test_ingestions_read_as_started_then_completed_with_their_chunks_or_failed_with_the_error(
        tenant: CreatedTenant, readable: list[str]) -> None:
    def story(file_name: str, data: bytes) -> tuple[dict[str, Any], list[str]]:
        ingested = documents.ingest(tenant.root_path_part_id, file_name, data, tenant.api_key)
        finished = documents.finished(ingested["workflow_id"], tenant.api_key)
        subject = f"ingestion {ingested['document_version_id'][:8]}… {file_name}"
        return finished, [line.removeprefix(subject) for line in readable if line.startswith(subject)]

    completed, lines = story("policy.md", documents.markdown(sections=40))
    assert completed["chunks_processed"] > 1
    assert lines == [" processing", f" completed: {completed['chunks_processed']} chunks"]
    failed, lines = story("broken.pdf", documents.corrupt_pdf())
    assert lines == [" processing", f" failed: {failed['error']}"]


def test_a_request_the_gateway_refuses_still_gets_its_line(readable: list[str]) -> None:
    server = gateway.make_server("127.0.0.1", 0, lambda event, context: {"statusCode": 200})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        connection.putrequest("POST", "/v1/documents/ingest?name=secret-looking")
        connection.putheader("Content-Length", str(gateway.GATEWAY_MAX_BODY + 1))
        connection.endheaders()
        assert connection.getresponse().status == 413
    finally:
        server.shutdown()
        server.server_close()
    assert len(readable) == 1
    assert readable[0].startswith("POST /v1/documents/ingest 413 ") and readable[0].endswith(" ms")
