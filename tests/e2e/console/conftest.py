"""The console in headless Chromium (Debian's package, driven by Playwright) against the local stack.

One browser per session, a fresh context (its own sessionStorage: a new tab session) per tab. Every
tab fails its test on a console error (Chromium reports CSP violations there), an uncaught exception, a
5xx answer, a request that failed or a dialog (`alert()` from injected markup would open one).
Screenshots go to `.screenshots/console/<test file>/`.

A test signs in and looks, as a person does:

    def test_runs(console: Console, local_stack: LocalStack) -> None:
        console.sign_in(local_stack.credentials["api_key"])
        page = console.open("#/runs")
        expect(page.get_by_role("heading", name="Runs")).to_be_visible()
        console.screenshot("runs")
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    Request,
    Response,
    ViewportSize,
    sync_playwright,
)

from tests.conftest import wait_for
from tests.e2e.conftest import LocalStack

SCREENSHOTS = Path(__file__).resolve().parents[3] / ".screenshots" / "console"
VIEWPORTS: dict[str, ViewportSize] = {"desktop": {"width": 1280, "height": 800},
                                      "phone": {"width": 390, "height": 844}}
# Without the networking flags Chromium keeps dialling Google's hosts, which a closed network refuses.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXPECTED_API_REFUSAL = "Failed to load resource: the server responded with a status of 4"
WEBHOOK_SECRET = "whsec_" + "Y29uc29sZS10ZXN0cy13ZWJob29rLXNlY3JldA=="


def chromium_executable() -> str:
    found = os.environ.get("KSFLOW_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is not installed: `make test` installs Debian's chromium package")
    return found


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_FLAGS)
    yield launched
    launched.close()


@dataclass
class Api:
    """The public API as a test's setup calls it, with one user's API key."""

    url: str
    key: str

    def call(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        answer = json.loads(raw) if raw else None
        if expect is not None:
            assert status == expect, (method, path, status, answer)
        elif status >= 400:
            raise AssertionError((method, path, status, answer))
        return answer

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body if body is not None else {})

    def wait_for(self, condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
        try:
            return wait_for(condition, timeout=timeout, interval=0.2)
        except AssertionError:
            raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture
def owner_api(local_stack: LocalStack) -> Api:
    return Api(local_stack.url, local_stack.credentials["api_key"])


@pytest.fixture
def knowledge(owner_api: Api, local_stack: LocalStack) -> dict[str, dict[str, Any]]:
    """A sources folder, an outputs folder and an instructions document under the tenant's root."""
    root, suffix = local_stack.credentials["root_path_part_id"], uuid.uuid4().hex[:6]
    folder = {"parent_path_part_id": root}
    return {
        "sources": owner_api.post("/v1/folders", {**folder, "name": f"Policies {suffix}"}),
        "outputs": owner_api.post("/v1/folders", {**folder, "name": f"Summaries {suffix}"}),
        "instructions": owner_api.post("/v1/documents", {**folder, "name": f"Instructions {suffix}.md",
                                                         "document_type": "PLAINTEXT", "document_origin": "SOURCE"}),
    }


@pytest.fixture
def make_definition(owner_api: Api, knowledge: dict[str, dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """`make_definition(runner_url, name=..., **fields)`: a definition over `knowledge`, signed with
    WEBHOOK_SECRET (start its runner with that secret)."""

    def make(runner_url: str, name: str = "Summarise policies", **extra: Any) -> dict[str, Any]:
        body = {"name": name, "runner_type": "SELF_HOSTED",
                "runner_config": {"url": runner_url, "webhook_secret": WEBHOOK_SECRET},
                "source_path_part_ids": [knowledge["sources"]["path_part_id"]],
                "instruction_path_part_ids": [knowledge["instructions"]["path_part_id"]],
                "output_path_part_ids": [knowledge["outputs"]["path_part_id"]],
                "max_run_duration_seconds": 60, **extra}
        return dict(owner_api.post("/v1/workflow-definitions", body))

    return make


@dataclass
class Watch:
    """What went wrong in a tab, in words a failing test prints."""

    problems: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        # A 4xx the page asked for (a wrong key, a refused action) is shown to the user, not a fault.
        if message.type == "error" and not message.text.startswith(EXPECTED_API_REFUSAL):
            self.problems.append(f"console: {message.text}")

    def uncaught(self, error: Exception) -> None:
        self.problems.append(f"uncaught: {error}")

    def response(self, response: Response) -> None:
        if response.status >= 500:
            self.problems.append(f"{response.status} from {response.request.method} {response.url}")

    def request_failed(self, request: Request) -> None:
        # Leaving a page cancels its open requests: that is no failure.
        if "ERR_ABORTED" not in (request.failure or ""):
            self.problems.append(f"{request.method} {request.url} failed: {request.failure}")

    def dialog(self, dialog: Dialog) -> None:
        self.problems.append(f"{dialog.type} dialog: {dialog.message}")
        dialog.dismiss()


def watch(page: Page) -> Watch:
    """Records the page's problems from now on."""
    recorder = Watch()
    page.on("console", recorder.console)
    page.on("pageerror", recorder.uncaught)
    page.on("response", recorder.response)
    page.on("requestfailed", recorder.request_failed)
    page.on("dialog", recorder.dialog)
    return recorder


@dataclass
class Console:
    """One browser tab on the console, with what went wrong in it recorded."""

    page: Page
    base_url: str
    folder: Path
    watch: Watch

    def open(self, route: str = "") -> Page:
        """Go to `/console` plus a hash route such as `#/runs`."""
        self.page.goto(f"{self.base_url}/console{route}")
        return self.page

    def sign_in(self, api_key: str) -> None:
        """Sign in on the console's form, as a person does; returns once the navigation shows."""
        self.open()
        self.page.get_by_label("API key").fill(api_key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("navigation", name="Console").wait_for()

    def screenshot(self, name: str) -> list[Path]:
        """The page as it is now at both widths (full length), `<name>-390px.png` and `<name>-1280px.png`; then
        back to the width the tab had."""
        self.folder.mkdir(parents=True, exist_ok=True)
        width_before = self.page.viewport_size
        taken = []
        for viewport in VIEWPORTS.values():
            self.page.set_viewport_size(viewport)
            self.page.wait_for_timeout(150)
            path = self.folder / f"{name}-{viewport['width']}px.png"
            self.page.screenshot(path=str(path), full_page=True)
            taken.append(path)
        if width_before:
            self.page.set_viewport_size(width_before)
        return taken


@pytest.fixture
def open_console(browser: Browser, local_stack: LocalStack,
                 request: pytest.FixtureRequest) -> Iterator[Callable[..., Console]]:
    """`open_console("phone")`: one more tab session (its own sessionStorage, so signed out), "desktop" by default.
    Every tab's problems fail the test at its end."""
    tabs: list[Console] = []

    def open_tab(viewport: str = "desktop") -> Console:
        context = browser.new_context(viewport=VIEWPORTS[viewport])
        context.set_default_timeout(10_000)
        page = context.new_page()
        tabs.append(Console(page, local_stack.url, SCREENSHOTS / request.path.stem, watch(page)))
        return tabs[-1]

    yield open_tab
    problems = []
    for tab in tabs:
        tab.page.context.close()
        problems += [f"{tab.page.viewport_size}: {problem}" for problem in tab.watch.problems]
    assert not problems, "the console had problems:\n" + "\n".join(problems)


@pytest.fixture
def console(open_console: Callable[..., Console]) -> Console:
    """A signed-out console tab at 1280 px."""
    return open_console()
