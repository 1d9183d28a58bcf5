"""The run page: progress fed by heartbeats, the event timeline, the snapshot tree, Stop and Retry, and a
runner's error shown as text."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LocalStack
from tests.e2e.console.conftest import WEBHOOK_SECRET, Api, Console

pytestmark = pytest.mark.e2e

HOSTILE = "<img src=x onerror=alert(1)>"


def progress_values_until_completed(page: Page, timeout: float = 20) -> set[int]:
    """The values the progress bar showed between 0 and 100 (exclusive) while the run worked."""
    bar = page.get_by_role("progressbar", name="Progress")
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = bar.get_attribute("value")
        if value is not None and 0 < int(float(value)) < 100:
            seen.add(int(float(value)))
        if page.get_by_text("100% · completed").count():
            return seen
        page.wait_for_timeout(100)
    raise AssertionError(f"the run did not complete on the page; progress seen: {sorted(seen)}")


def wait_for_status(owner_api: Api, run_id: str, status: str) -> dict[str, Any]:
    return dict(owner_api.wait_for(lambda: (run := owner_api.get(f"/v1/workflow-runs/{run_id}"))["status"] == status
                                   and run, f"run {run_id} {status}"))


def slow_run(owner_api: Api, start_runner: Callable[..., str], make_definition: Callable[..., dict[str, Any]],
             name: str) -> dict[str, Any]:
    """A run its runner accepts and keeps for 30 s, seen RUNNING."""
    definition = make_definition(start_runner(WEBHOOK_SECRET, "--delay", "30"), name=name)
    run = dict(owner_api.post(f"/v1/workflow-definitions/{definition['id']}/invoke"))
    wait_for_status(owner_api, run["id"], "RUNNING")
    return run


def test_progress_moves_then_the_timeline_and_snapshot_tell_what_happened(
        console: Console, owner_api: Api, local_stack: LocalStack, start_runner: Callable[..., str],
        make_definition: Callable[..., dict[str, Any]], knowledge: dict[str, dict[str, Any]]) -> None:
    definition = make_definition(start_runner(WEBHOOK_SECRET, "--heartbeat-every", "0.3", "--delay", "3"),
                                 name="Heartbeating definition")
    console.sign_in(local_stack.credentials["api_key"])
    run = owner_api.post(f"/v1/workflow-definitions/{definition['id']}/invoke")
    page = console.open(f"#/runs/{run['id']}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Heartbeating definition")

    seen = progress_values_until_completed(page)
    assert len(seen) >= 2, f"the progress bar did not move: {sorted(seen)}"
    expect(page.get_by_role("progressbar", name="Progress")).to_have_attribute("value", "100")
    summary = page.get_by_role("region", name="Summary")
    expect(summary.get_by_text("COMPLETED", exact=True)).to_be_visible()
    expect(summary.get_by_role("link", name="Heartbeating definition")).to_be_visible()
    expect(page.get_by_text("Last heartbeat")).to_be_visible()

    timeline = page.get_by_role("list", name="Events, oldest first")
    expect(timeline).to_contain_text("Dispatch attempt → HTTP 202 in")
    expect(timeline).to_contain_text("Callback: COMPLETED (signature)")
    expect(timeline.get_by_role("listitem").last).to_contain_text("Completed")
    assert page.get_by_role("button", name="Stop", exact=True).count() == 0
    assert page.get_by_role("button", name="Retry", exact=True).count() == 0

    tree = page.get_by_role("list", name="Snapshot paths")
    expect(tree).to_contain_text(knowledge["sources"]["name"])
    expect(tree.get_by_role("listitem").filter(has_text=knowledge["outputs"]["name"]).last).to_contain_text("output")
    console.screenshot("run-detail")


def test_stop_from_the_page_then_a_double_clicked_retry_starts_one_attempt(
        console: Console, owner_api: Api, local_stack: LocalStack, start_runner: Callable[..., str],
        make_definition: Callable[..., dict[str, Any]]) -> None:
    run = slow_run(owner_api, start_runner, make_definition, "Slow definition")
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open(f"#/runs/{run['id']}")

    page.get_by_role("button", name="Stop", exact=True).click()
    page.get_by_role("button", name="Yes, stop").click()
    summary = page.get_by_role("region", name="Summary")
    expect(summary.get_by_text("Stopped by user")).to_be_visible()
    expect(summary.get_by_text("FAILED", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Stop", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Retry", exact=True)).to_be_visible()
    expect(page.get_by_role("list", name="Events, oldest first")).to_contain_text("Failed: stopped — Stopped by user")
    console.screenshot("run-stopped")

    page.get_by_role("button", name="Retry", exact=True).dblclick()
    expect(page.get_by_role("button", name="Retry", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_visible()
    running = wait_for_status(owner_api, run["id"], "RUNNING")
    assert running["attempt"] == 2
    assert [a["attempt"] for a in running["attempts"]] == [1]
    attempts = page.get_by_role("region", name="Attempts")
    expect(attempts.get_by_role("row")).to_have_count(3)  # the header and two attempts
    expect(summary.get_by_text("RUNNING", exact=True)).to_be_visible(timeout=10000)
    events = owner_api.get(f"/v1/workflow-runs/{run['id']}/events?limit=100")["items"]
    assert [e["type"] for e in events].count("retried") == 1
    expect(page.get_by_role("list", name="Events, oldest first")).to_contain_text("Retried by")
    page.get_by_role("button", name="Stop", exact=True).click()
    page.get_by_role("button", name="Yes, stop").click()
    expect(page.get_by_role("button", name="Retry", exact=True)).to_be_visible()


def test_only_those_who_may_see_a_run_find_it(
        console: Console, owner_api: Api, local_stack: LocalStack, start_runner: Callable[..., str],
        make_definition: Callable[..., dict[str, Any]]) -> None:
    definition = make_definition(start_runner(WEBHOOK_SECRET, "--delay", "30"), name="Guarded definition")
    run = owner_api.post(f"/v1/workflow-definitions/{definition['id']}/invoke")
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open(f"#/runs/{run['id']}")
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_visible()

    # A USER who neither invoked the run nor wrote its definition may not see it: like another tenant's id.
    member = local_stack.admin("create-user", "--tenant-id", local_stack.credentials["tenant_id"],
                               "--email", f"member-{uuid.uuid4().hex[:6]}@example.com", "--role", "USER")
    stranger = local_stack.admin("create-tenant", "--name", "Elsewhere")
    for key in (member["api_key"], stranger["api_key"]):
        page.get_by_role("button", name="Sign out").click()
        console.sign_in(key)
        page = console.open(f"#/runs/{run['id']}")
        expect(page.get_by_role("heading", level=1)).to_have_text("Run not found")
        expect(page.get_by_role("alert")).to_contain_text("not allowed to see it")
        expect(page.get_by_role("button", name="Stop", exact=True)).to_have_count(0)
    owner_api.post(f"/v1/workflow-runs/{run['id']}/stop")


def test_a_hostile_error_shows_as_text(
        console: Console, owner_api: Api, local_stack: LocalStack, start_runner: Callable[..., str],
        make_definition: Callable[..., dict[str, Any]]) -> None:
    run = slow_run(owner_api, start_runner, make_definition, "Hostile definition")
    owner_api.post(f"/v1/workflow-runs/{run['id']}/callback", {"status": "FAILED", "error": HOSTILE})

    console.sign_in(local_stack.credentials["api_key"])
    page = console.open(f"#/runs/{run['id']}")
    expect(page.get_by_role("region", name="Summary").get_by_text(HOSTILE, exact=True)).to_be_visible()
    timeline = page.get_by_role("list", name="Events, oldest first")
    expect(timeline).to_contain_text(f"Callback: FAILED (API key) — {HOSTILE}")
    assert page.locator("img").count() == 0
    console.screenshot("run-hostile-error")
