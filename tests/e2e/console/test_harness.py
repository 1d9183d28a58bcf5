"""The browser harness itself: the local stack's pages open at both widths, and a page's hidden problems
(a CSP violation, markup that ran an `alert()`) are caught; the API helpers make data."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.e2e.console.conftest import Api, watch

pytestmark = pytest.mark.e2e

HOSTILE = "<img src=x onerror=alert(1)>"


def test_the_api_docs_open_at_both_widths(page: Page, screenshot: Callable[[Page, str], Path]) -> None:
    page.goto("/docs")
    expect(page).to_have_title("ksflow API")
    expect(page.get_by_role("heading", name=re.compile("^ksflow"))).to_be_visible()
    assert screenshot(page, "docs").stat().st_size > 0


def test_a_policy_violation_is_caught(browser: Browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    recorder = watch(page)

    def serve(route: Route) -> None:
        route.fulfill(content_type="text/html", headers={"Content-Security-Policy": "script-src 'self'"},
                      body="<title>inline</title><script>document.title = 'ran'</script>")

    page.route("http://inline.test/", serve)
    page.goto("http://inline.test/")
    context.close()
    assert any("Content Security Policy" in problem for problem in recorder.problems), recorder.problems


def test_markup_that_opens_a_dialog_is_caught(browser: Browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    recorder = watch(page)
    page.set_content(f"<p>{HOSTILE}</p>")
    page.wait_for_timeout(300)
    context.close()
    assert "alert dialog: 1" in recorder.problems, recorder.problems


def test_data_for_the_console_is_made_through_the_api(api: Api, make_definition: Callable[..., dict]) -> None:
    definition = make_definition()
    run = api.invoke(definition["id"], idempotency_key="harness")
    assert api.invoke(definition["id"], idempotency_key="harness")["id"] == run["id"]
    assert api.wait_for_run(run["id"], "COMPLETED")["status"] == "COMPLETED"
