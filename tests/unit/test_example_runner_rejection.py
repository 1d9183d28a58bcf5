"""The example runner's line for a dispatch it cannot verify names the run and points at --secret."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from ksflow.local.stack import free_port
from ksflow.runner import example
from ksflow.workflows import webhooks


@pytest.fixture
def runner_log() -> Iterator[tuple[str, list[str]]]:
    """A runner with the secret `right-secret`; its URL and the lines it logs."""
    lines: list[str] = []
    port = free_port()
    server = example.make_server("127.0.0.1", port, "right-secret", delay=0, fail=False, log=lines.append)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}/", lines
    server.shutdown()
    server.server_close()


def dispatch(url: str, body: str, secret: str) -> int:
    headers = webhooks.sign_headers(secret, f"msg_{uuid.uuid4().hex}", datetime.now(UTC), body)
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def test_a_dispatch_signed_with_another_secret_is_named_and_hinted(runner_log: tuple[str, list[str]]) -> None:
    url, lines = runner_log
    run_id = str(uuid.uuid4())
    assert dispatch(url, json.dumps({"run": {"id": run_id}}), "wrong-secret") == 401
    [line] = lines
    assert line.startswith(f"rejected dispatch for run {run_id}: ")
    assert "--secret" in line and "webhook_secret" in line


@pytest.mark.parametrize("body", ["not json", json.dumps({"run": {"id": "x\nforged line"}}), "[1]"])
def test_only_a_well_formed_run_id_reaches_the_log(runner_log: tuple[str, list[str]], body: str) -> None:
    url, lines = runner_log
    assert dispatch(url, body, "wrong-secret") == 401
    [line] = lines
    assert line.startswith("rejected dispatch: ") and "\n" not in line
