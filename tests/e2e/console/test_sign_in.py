"""Signing in to the console: a wrong key is refused with a clear message; a right one is kept for this tab
only (sessionStorage: no URL, no cookie, no localStorage), survives a reload, and is gone on sign out."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LocalStack
from tests.e2e.console.conftest import Console

pytestmark = pytest.mark.e2e


def _signed_out(page: Page) -> None:
    expect(page.get_by_label("API key")).to_be_visible()
    expect(page.get_by_role("navigation", name="Console")).to_be_hidden()


def _storage(page: Page, name: str) -> str:
    return str(page.evaluate(f"JSON.stringify(Object.entries({name}))"))


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_key_is_held_by_this_tab_only_until_sign_out(
        viewport: str, open_console: Callable[..., Console], local_stack: LocalStack) -> None:
    api_key = local_stack.credentials["api_key"]
    console = open_console(viewport)
    requested: list[str] = []
    console.page.on("request", lambda request: requested.append(request.url))
    page = console.open()
    _signed_out(page)
    console.screenshot("sign-in")

    page.get_by_label("API key").fill("sk-this-key-does-not-exist")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("This API key was not accepted")
    _signed_out(page)
    console.screenshot("sign-in-refused")

    console.sign_in(api_key)
    navigation = page.get_by_role("navigation", name="Console")
    for section in ("Runs", "Definitions", "Analytics", "Documents"):
        expect(navigation.get_by_role("link", name=section)).to_be_visible()
    assert api_key in _storage(page, "sessionStorage")
    assert api_key not in _storage(page, "localStorage")
    assert not any(api_key in str(cookie) for cookie in page.context.cookies())
    assert api_key not in page.url

    page.reload()
    expect(navigation.get_by_role("link", name="Runs")).to_be_visible()
    _signed_out(open_console(viewport).open())  # another tab session knows no key

    page.get_by_role("button", name="Sign out").click()
    _signed_out(page)
    assert api_key not in _storage(page, "sessionStorage")
    page.reload()
    _signed_out(page)
    assert not [url for url in requested if api_key in url]
