"""The runs page: the tenant's runs, filtered by status, definition, invoker and date, refreshed live."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LocalStack
from tests.e2e.console.conftest import WEBHOOK_SECRET, Api, Console

pytestmark = pytest.mark.e2e


def test_filters_narrow_the_list_and_live_refresh_shows_runs_finishing(
        console: Console, owner_api: Api, local_stack: LocalStack, start_runner: Callable[..., str],
        make_definition: Callable[..., dict[str, Any]]) -> None:
    passing = make_definition(start_runner(WEBHOOK_SECRET), name="Passing definition")
    failing = make_definition(start_runner(WEBHOOK_SECRET, "--fail"), name="Failing definition")
    completed = owner_api.post(f"/v1/workflow-definitions/{passing['id']}/invoke")
    failed = owner_api.post(f"/v1/workflow-definitions/{failing['id']}/invoke")

    console.sign_in(local_stack.credentials["api_key"])
    page = console.open("#/runs")
    table = page.get_by_role("region", name="Runs")
    first_row_of = lambda run: table.get_by_role("row").filter(has=page.get_by_title(run["id"]))  # noqa: E731
    # Both runs start open; the page refreshes by itself until each shows its outcome.
    expect(first_row_of(completed)).to_contain_text("COMPLETED", timeout=20000)
    expect(first_row_of(failed)).to_contain_text("FAILED", timeout=20000)
    console.screenshot("runs")

    page.get_by_role("button", name="FAILED").click()
    expect(page.get_by_role("button", name="FAILED")).to_have_attribute("aria-pressed", "true")
    expect(first_row_of(completed)).to_have_count(0)
    expect(first_row_of(failed)).to_have_count(1)
    assert "status=FAILED" in page.url
    console.screenshot("runs-failed")

    page.get_by_role("button", name="FAILED").click()
    page.get_by_label("Definition").select_option(label="Passing definition")
    expect(first_row_of(failed)).to_have_count(0)
    expect(first_row_of(completed)).to_have_count(1)

    # A date range that ends before today holds none of them.
    page.get_by_label("Created to").fill("2020-01-01")
    expect(page.get_by_text("No runs match these filters.")).to_be_visible()

    # The filters live in the URL: a reload keeps them.
    page.reload()
    expect(page.get_by_label("Created to")).to_have_value("2020-01-01")
    page.get_by_role("button", name="Clear filters").click()
    expect(first_row_of(failed)).to_have_count(1)
