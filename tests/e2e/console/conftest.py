"""Browser tests of the console: headless Chromium from the system's package, driven by Playwright, against the
session's local stack.

One browser for the whole session, a new context (a fresh tab session: no cookies, no sessionStorage) per page.
Every page fails its test if anything went wrong in it that a user might not see: a console error (Chromium
reports Content-Security-Policy violations there), an uncaught exception, a 5xx answer, a failed request or a
dialog (an `alert()` that injected markup managed to run).
"""

from __future__ import annotations

import json
import os
import shutil
import time
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
    Request,
    Response,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.e2e.conftest import LocalStack

DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
VIEWPORTS = {"1280px": DESKTOP, "390px": PHONE}
# Without the background-networking flags Chromium calls home at start, which a closed network refuses.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[3] / ".screenshots" / "console"
WEBHOOK_SECRET = "whsec_" + "Y29uc29sZS1ydW5uZXItc2VjcmV0LXZhbHVl"


def chromium_executable() -> str:
    """CHROMIUM if set, else `chromium` on PATH (Debian's package, which `make browser` installs)."""
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not executable:
        pytest.fail("Chromium is missing: run `make browser` (installs Debian's chromium package) or set CHROMIUM")
    return executable


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_executable(), headless=True,
                                              args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@dataclass
class Watch:
    """What went wrong in a page, in words a failing test can print."""
    problems: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        # An answer's status is judged by `response` below: a 4xx the page handles is not a problem.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console error: {message.text}")

    def page_error(self, error: Exception) -> None:
        self.problems.append(f"uncaught exception: {error}")

    def response(self, response: Response) -> None:
        if response.status >= 500:
            self.problems.append(f"{response.status} from {response.request.method} {response.url}")

    def request_failed(self, request: Request) -> None:
        # A navigation cancels the requests still open, which is not a failure of the page.
        if "ERR_ABORTED" not in (request.failure or ""):
            self.problems.append(f"{request.method} {request.url} failed: {request.failure}")

    def dialog(self, dialog: Dialog) -> None:
        self.problems.append(f"{dialog.type} dialog: {dialog.message}")
        dialog.dismiss()


def watch(page: Page) -> Watch:
    """Records the page's problems from now on."""
    recorder = Watch()
    page.on("console", recorder.console)
    page.on("pageerror", recorder.page_error)
    page.on("response", recorder.response)
    page.on("requestfailed", recorder.request_failed)
    page.on("dialog", recorder.dialog)
    return recorder


@pytest.fixture
def open_page(browser: Browser, local_stack: LocalStack) -> Iterator[Callable[[ViewportSize], Page]]:
    """`open_page(DESKTOP)`: a watched page in a context of its own, its base URL the local stack, so
    `page.goto("/console")` opens the console. Each call is a new tab session (a new sign-in)."""
    opened: list[tuple[Page, Watch]] = []

    def open_one(viewport: ViewportSize) -> Page:
        context = browser.new_context(viewport=viewport, base_url=local_stack.url)
        context.set_default_timeout(10_000)
        page = context.new_page()
        opened.append((page, watch(page)))
        return page

    yield open_one
    problems = []
    for page, recorder in opened:
        page.context.close()
        problems += [f"{page.viewport_size}: {problem}" for problem in recorder.problems]
    if problems:
        pytest.fail("the page had problems:\n" + "\n".join(problems))


@pytest.fixture(params=list(VIEWPORTS.values()), ids=list(VIEWPORTS))
def page(request: pytest.FixtureRequest, open_page: Callable[[ViewportSize], Page]) -> Page:
    """A watched page at 1280 px, then (the same test again) at 390 px."""
    return open_page(request.param)


@pytest.fixture
def desktop_page(open_page: Callable[[ViewportSize], Page]) -> Page:
    return open_page(DESKTOP)


@pytest.fixture
def phone_page(open_page: Callable[[ViewportSize], Page]) -> Page:
    return open_page(PHONE)


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """`screenshot(page, "runs")` writes the full page to .screenshots/console/<test file>/runs-<width>px.png, for
    people to look at (nothing compares them)."""
    folder = SCREENSHOTS / request.path.stem

    def take(page: Page, name: str) -> Path:
        width = (page.viewport_size or DESKTOP)["width"]
        path = folder / f"{name}-{width}px.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=path, full_page=True)
        return path

    return take


def sign_in(page: Page, api_key: str) -> None:
    """Opens the console and signs in with the key, as a person does: the nav shows once signed in."""
    page.goto("/console")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation").get_by_role("link", name="Runs")).to_be_visible()


@dataclass
class Api:
    """The public API with one user's key, to make a test's data quickly."""
    url: str
    api_key: str
    root_path_part_id: str

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer; an error answer fails the test with its detail."""
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            pytest.fail(f"{method} {path} answered {error.code}: {error.read().decode(errors='replace')}")
        return json.loads(raw) if raw else None

    def definition(self, runner_url: str, **overrides: Any) -> Any:
        """A definition of the runner at `runner_url` over new folders and documents in the root folder."""
        suffix = uuid.uuid4().hex[:8]

        def create(kind: str, name: str) -> str:
            body = {"name": f"{name}-{suffix}", "parent_path_part_id": self.root_path_part_id}
            if kind == "documents":
                body |= {"document_type": "PLAINTEXT", "document_origin": "SOURCE"}
            return str(self.call("POST", f"/v1/{kind}", body)["path_part_id"])

        return self.call("POST", "/v1/workflow-definitions", {
            "name": f"Summarise policies {suffix}", "runner_type": "SELF_HOSTED",
            "runner_config": {"url": runner_url, "webhook_secret": WEBHOOK_SECRET},
            "source_path_part_ids": [create("folders", "policies")],
            "instruction_path_part_ids": [create("documents", "instructions.md")],
            "output_path_part_ids": [create("folders", "summaries")],
            "template_path_part_id": create("documents", "template.md"), "max_run_duration_seconds": 60,
            **overrides})

    def invoke(self, definition_id: str, idempotency_key: str | None = None) -> Any:
        body = {"idempotency_key": idempotency_key} if idempotency_key else {}
        return self.call("POST", f"/v1/workflow-definitions/{definition_id}/invoke", body)

    def wait_for_run(self, run_id: str, *statuses: str, timeout: float = 30) -> Any:
        """The run once its status is one of `statuses`."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.call("GET", f"/v1/workflow-runs/{run_id}")
            if run["status"] in statuses:
                return run
            if time.monotonic() > deadline:
                pytest.fail(f"run {run_id} is {run['status']}, not {' or '.join(statuses)}, after {timeout} s")
            time.sleep(0.2)


@pytest.fixture
def api(local_stack: LocalStack) -> Api:
    """The local stack's API as its first OWNER."""
    return Api(local_stack.url, local_stack.credentials["api_key"], local_stack.credentials["root_path_part_id"])


@pytest.fixture
def make_definition(api: Api, start_runner: Callable[..., str]) -> Callable[..., Any]:
    """`make_definition("--heartbeat-every", "0.2", name="Nightly")`: a definition (the API's JSON) of a new
    example runner started with those options (`--delay 0.5` by default, `--fail` to fail its runs)."""
    def make(*runner_options: str, **overrides: Any) -> Any:
        return api.definition(start_runner(WEBHOOK_SECRET, *runner_options), **overrides)

    return make
