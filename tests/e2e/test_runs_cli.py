"""`ksflow runs` as users run it: a process pointed at the local stack by its environment or its credentials
file, reading and acting on runs that real runner processes work on."""

from __future__ import annotations

import json
import os
import re
import subprocess
import unicodedata
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import KSFLOW, LocalStack
from tests.e2e.test_local_stack_sdk import WEBHOOK_SECRET, _await_end, _client, _knowledge
from tests.e2e.test_run_lifecycle_sdk import _create_definition, _definition_body, _get_run, _http, _wait_for

pytestmark = pytest.mark.e2e

HOSTILE = "<img src=x onerror=alert(1)>\x1b[2J\x1b[31m\rall good\u202egnp.exe"


def ksflow_runs(stack: LocalStack, cwd: Path, *args: str, api_key: str | None = None,
                environment: bool = True) -> subprocess.CompletedProcess[str]:
    """`ksflow runs ARGS` in `cwd`, aimed at `stack` by KSFLOW_API_URL and KSFLOW_API_KEY (the owner's key unless
    another is given), or by nothing at all."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_", "MOTO_", "POWERTOOLS_", "KSFLOW_"))}
    if environment:
        env |= {"KSFLOW_API_URL": stack.url, "KSFLOW_API_KEY": api_key or stack.credentials["api_key"]}
    return subprocess.run([KSFLOW, "runs", *args], cwd=cwd, env={**env, "COLUMNS": "200"}, capture_output=True,
                          text=True, timeout=60)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def _raw_controls(text: str) -> list[str]:
    return [char for char in text if char != "\n" and unicodedata.category(char) in ("Cc", "Cf")]


def _definition(stack: LocalStack, runner_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(knowledge parts, definition) of a new definition with its own name, so listings can be told apart."""
    parts = _knowledge(_client(stack, stack.credentials["api_key"]), stack.credentials["root_path_part_id"])
    body = _definition_body(parts, runner_url, WEBHOOK_SECRET, name=f"CLI {uuid.uuid4().hex[:8]}")
    return parts, _create_definition(stack, body)


def _invoke(stack: LocalStack, definition_id: str) -> str:
    status, run, _ = _http(stack, "POST", f"/v1/workflow-definitions/{definition_id}/invoke", {})
    assert status == 202, run
    return str(run["id"])


def test_list_get_and_events_show_a_run_from_dispatch_to_completion(
        local_stack: LocalStack, start_runner: Callable[..., str], tmp_path: Path) -> None:
    parts, definition = _definition(local_stack, start_runner(WEBHOOK_SECRET, "--heartbeat-every", "0.1"))
    run_id = _invoke(local_stack, definition["id"])
    assert _await_end(_client(local_stack, local_stack.credentials["api_key"]), run_id).status == "COMPLETED"

    listed = _ok(ksflow_runs(local_stack, tmp_path, "list", "--definition-id", definition["id"])).splitlines()
    assert re.split(r"\s{2,}", listed[0]) == ["RUN", "DEFINITION", "STATUS", "ATTEMPT", "PROGRESS", "CREATED",
                                              "DURATION", "ERROR"]
    row = re.split(r"\s{2,}", listed[1])
    assert row[:5] == [run_id, definition["name"], "COMPLETED", "1", row[4]] and row[4].endswith("%")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row[5]) and re.fullmatch(r"\d+\.\ds", row[6])
    assert listed[2:] == ["1 of 1 runs"]
    assert _ok(ksflow_runs(local_stack, tmp_path, "list", "--definition-id", definition["id"], "--status", "failed",
                           "--status", "running")).splitlines() == ["No runs match.", "0 of 0 runs"]

    shown = _ok(ksflow_runs(local_stack, tmp_path, "get", run_id))
    assert re.search(r"^Status +COMPLETED$", shown, re.MULTILINE)
    assert re.search(rf"^Definition +{definition['name']} \({definition['id']}\)$", shown, re.MULTILINE)
    assert re.search(r"^1 \(current\) +COMPLETED +\S+Z +\S+Z +\d+\.\ds +-$", shown, re.MULTILINE), shown
    for role, part in (("source", "sources"), ("instruction", "instructions"), ("output", "outputs"),
                       ("template", "template")):
        assert re.search(rf"^{role} +{re.escape(parts[part].materialized_path)} ", shown, re.MULTILINE), shown

    events = _ok(ksflow_runs(local_stack, tmp_path, "events", run_id)).splitlines()
    assert re.split(r"\s{2,}", events[0]) == ["TIME", "ATTEMPT", "TYPE", "DETAIL"]
    assert re.search(r"  1  +dispatch_attempt  +HTTP 20\d in \d+ ms$", events[2]), events
    assert any(re.search(r"  heartbeat  +\d+% ", line) for line in events), events
    assert re.search(r"  callback  +COMPLETED by signature$", events[-3]) and events[-2].endswith("  completed")
    total = _http(local_stack, "GET", f"/v1/workflow-runs/{run_id}/events")[1]["total"]
    assert events[-1] == f"{total} of {total} events"

    # --json is the API's JSON, for scripts.
    assert json.loads(_ok(ksflow_runs(local_stack, tmp_path, "get", run_id, "--json"))) == \
        _get_run(local_stack, run_id)


def test_stop_then_retry_and_a_hostile_error_shown_as_text(
        local_stack: LocalStack, start_runner: Callable[..., str], tmp_path: Path) -> None:
    _, definition = _definition(local_stack, start_runner(WEBHOOK_SECRET, "--delay", "60"))
    run_id = _invoke(local_stack, definition["id"])
    _wait_for(lambda: _get_run(local_stack, run_id)["status"] == "RUNNING", "the runner to accept the dispatch")

    assert _ok(ksflow_runs(local_stack, tmp_path, "stop", run_id)).strip() == \
        f"Run {run_id} FAILED (attempt 1): Stopped by user"
    again = ksflow_runs(local_stack, tmp_path, "stop", run_id)
    assert again.returncode == 1 and again.stderr.startswith("error: Conflict (409): ") and not again.stdout
    assert _ok(ksflow_runs(local_stack, tmp_path, "retry", run_id)).strip() == f"Run {run_id} PENDING (attempt 2)"
    _wait_for(lambda: _get_run(local_stack, run_id)["status"] == "RUNNING", "the second attempt's dispatch")

    # The second attempt fails with an error a hostile runner chose: it reaches the terminal as text.
    status, answer, _ = _http(local_stack, "POST", f"/v1/workflow-runs/{run_id}/callback",
                              {"status": "FAILED", "error": HOSTILE})
    assert status == 200, answer
    listed = _ok(ksflow_runs(local_stack, tmp_path, "list", "--definition-id", definition["id"]))
    shown = _ok(ksflow_runs(local_stack, tmp_path, "get", run_id))
    events = _ok(ksflow_runs(local_stack, tmp_path, "events", run_id))
    for output in (listed, shown, events):
        assert _raw_controls(output) == [] and "<img src=x onerror=alert(1)>\\x1b[2J\\x1b[31m\\rall good\\u202e" \
            in output, output
    assert re.search(r"^1 +FAILED +\S+Z +\S+Z +\d+\.\ds +Stopped by user$", shown, re.MULTILINE), shown
    assert re.search(r"^2 \(current\) +FAILED +.*<img src=x", shown, re.MULTILINE), shown
    assert re.search(r"  2  +failed  +reason callback: <img src=x", events), events
    assert re.search(r"  1  +failed  +reason stopped: Stopped by user$", events, re.MULTILINE), events


def test_a_wrong_key_another_tenant_and_the_local_credentials(
        local_stack: LocalStack, start_runner: Callable[..., str], tmp_path: Path) -> None:
    _, definition = _definition(local_stack, start_runner(WEBHOOK_SECRET))
    run_id = _invoke(local_stack, definition["id"])

    wrong_key = "sk-" + "w" * 43
    refused = ksflow_runs(local_stack, tmp_path, "list", api_key=wrong_key)
    assert refused.returncode == 1 and not refused.stdout
    assert refused.stderr == ("error: Not signed in (401): Invalid or revoked API key. "
                              "Check --api-key or $KSFLOW_API_KEY.\n")

    stranger = local_stack.admin("create-tenant", "--name", "Initech")["api_key"]
    for action in ("get", "events", "stop", "retry"):
        hidden = ksflow_runs(local_stack, tmp_path, action, run_id, api_key=stranger)
        assert (hidden.returncode, hidden.stdout) == (1, ""), action
        assert hidden.stderr.startswith("error: Not found (404): "), (action, hidden.stderr)
        assert "Traceback" not in hidden.stderr and run_id not in hidden.stderr
    assert _ok(ksflow_runs(local_stack, tmp_path, "list", api_key=stranger)).splitlines() == \
        ["No runs match.", "0 of 0 runs"]

    # With nothing set, the command finds the local stack started in the current directory.
    local = _ok(ksflow_runs(local_stack, local_stack.workdir, "get", run_id, environment=False))
    assert re.search(rf"^Run +{run_id}$", local, re.MULTILINE)
    nowhere = ksflow_runs(local_stack, tmp_path, "list", environment=False)
    assert nowhere.returncode == 1 and nowhere.stderr.startswith("error: No API to call: pass --api-url")
    for output in (refused.stderr, nowhere.stderr, local):
        assert local_stack.credentials["api_key"] not in output and wrong_key not in output
