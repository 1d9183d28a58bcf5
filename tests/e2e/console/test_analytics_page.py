"""The analytics page: the tenant's runs drawn as charts for OWNER and ADMIN, and refused to a USER."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LocalStack
from tests.e2e.console.conftest import WEBHOOK_SECRET, Api, Console

pytestmark = pytest.mark.e2e

HOSTILE = "<img src=x onerror=alert(1)>"
CHARTS = ("Runs over time", "Failure rate", "Duration", "Runs by hour of day", "Top definitions", "Top invokers")


@pytest.fixture
def local_stack(local_stack: LocalStack) -> LocalStack:
    """The shared stack, signed in as the OWNER of a tenant of its own: the numbers are this test's runs alone."""
    suffix = uuid.uuid4().hex[:8]
    tenant = local_stack.admin("create-tenant", "--name", f"Analytics {suffix}", "--owner-email",
                               f"owner-{suffix}@example.com")
    return dataclasses.replace(local_stack, credentials=tenant)


def _finished(api: Api, run: dict[str, Any]) -> Callable[[], bool]:
    return lambda: api.get(f"/v1/workflow-runs/{run['id']}")["status"] in ("COMPLETED", "FAILED")


def test_an_owner_sees_the_tenants_runs_as_charts(
        console: Console, owner_api: Api, local_stack: LocalStack, start_runner: Callable[..., str],
        make_definition: Callable[..., dict[str, Any]]) -> None:
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open("#/analytics")
    expect(page.get_by_role("heading", name="Analytics", level=1)).to_be_visible()
    expect(page.get_by_role("figure", name="Runs over time")).to_contain_text("No runs in this window.")
    console.screenshot("analytics-empty")

    passing = make_definition(start_runner(WEBHOOK_SECRET), name="Passing definition")
    failing = make_definition(start_runner(WEBHOOK_SECRET, "--fail"), name=HOSTILE)
    runs = [owner_api.post(f"/v1/workflow-definitions/{d['id']}/invoke") for d in (passing, passing, failing)]
    for run in runs:
        owner_api.wait_for(_finished(owner_api, run), f"run {run['id']} to finish")
    summary = owner_api.get("/v1/admin/workflows/summary")
    assert summary["counts_by_state"]["FAILED"] == 1 and summary["counts_by_state"]["COMPLETED"] == 2

    page.get_by_role("button", name="Refresh").click()
    for name in CHARTS:
        expect(page.get_by_role("figure", name=name)).to_be_visible()
    expect(page.get_by_role("figure", name="Failure rate")).to_contain_text(f"{summary['failure_rate']:.1%}")
    over_time = page.get_by_role("figure", name="Runs over time")
    expect(over_time.get_by_role("listitem")).to_have_text(["COMPLETED: 2", "FAILED: 1", "RUNNING: 0", "PENDING: 0"])
    expect(over_time.get_by_role("img")).to_have_attribute("aria-label", re.compile(
        r"^Runs over time, by day: 3 runs; 2 COMPLETED, 1 FAILED, 0 RUNNING, 0 PENDING\. Most in "))
    expect(page.get_by_role("figure", name="Runs by hour of day").locator("g.column")).to_have_count(24)
    top = page.get_by_role("figure", name="Top definitions")
    expect(top.get_by_text("Passing definition", exact=True)).to_be_visible()
    # A name is user input: it shows as the text it is, and no image is made of it.
    expect(top.get_by_text(HOSTILE, exact=True)).to_be_visible()
    expect(page.locator("img")).to_have_count(0)
    expect(page.get_by_role("figure", name="Top invokers")).to_contain_text("3 runs")
    console.screenshot("analytics")

    # The window and bucket are kept in the URL; a shorter window groups by hour.
    page.get_by_label("Window").select_option(label="Last 24 hours")
    expect(page.get_by_label("Runs over time by")).to_have_value("hour")
    assert "window=24h" in page.url and "bucket=hour" in page.url
    expect(page.get_by_role("figure", name="Runs over time").get_by_role("img")).to_have_attribute(
        "aria-label", re.compile(r"^Runs over time, by hour: 3 runs;"))
    console.screenshot("analytics-24-hours")
    page.reload()
    expect(page.get_by_label("Window")).to_have_value("24h")


def test_a_user_is_told_analytics_are_for_owners_and_admins(console: Console, local_stack: LocalStack) -> None:
    user = local_stack.admin("create-user", "--tenant-id", local_stack.credentials["tenant_id"], "--email",
                             f"user-{uuid.uuid4().hex[:8]}@example.com", "--role", "USER")
    console.sign_in(user["api_key"])
    nav = console.page.get_by_role("navigation", name="Console")
    expect(nav.get_by_role("link", name="Runs")).to_be_visible()
    expect(nav.get_by_role("link", name="Analytics")).to_have_count(0)
    page = console.open("#/analytics")
    expect(page.get_by_role("alert")).to_contain_text("only for owners and admins")
