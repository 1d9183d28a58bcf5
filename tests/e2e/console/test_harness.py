"""The browser harness itself: a tab's hidden problems (a CSP violation, markup that ran an `alert()`) are
caught, so the console's tests fail on them."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Route

from tests.e2e.console.conftest import watch

pytestmark = pytest.mark.e2e

HOSTILE = "<img src=x onerror=alert(1)>"


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
