"""The console against hostile and odd input: names at the API's limits, markup, right-to-left text and bidi
overrides from users and runners, ids that name nothing, a key revoked mid-session and double submits.

The `console` fixture already fails a test on any dialog (`alert(1)` from injected markup), CSP violation or
uncaught error; these tests add what a person would see: nothing wider than a phone, the markup as text, words
in the right order, and a message that says what is missing.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LocalStack
from tests.e2e.console.conftest import VIEWPORTS, WEBHOOK_SECRET, Api, Console

pytestmark = pytest.mark.e2e

LONG_NAME = "W" * 255  # the API's longest name, one unbreakable word of wide letters
IMG = "<img src=x onerror=alert(1)>"
SVG = '"><svg onload=alert(1)>'
# A right-to-left override that is never closed, 4-byte letters, a pile of combining marks, Hebrew and an emoji.
BIDI = "\u202eevil \U0001d518 e\u0301\u0301\u0301 עברית \U0001f642"

# Text nodes that hold user text share a line with the console's words only inside an isolating element, or between
# Unicode's isolate marks (U+2068 … U+2069) where only plain text goes (tooltips).
UNISOLATED_OVERRIDES = """() => {
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    if (!text.textContent.includes("\\u202e")) continue;
    if (/\\u2068[^\\u2069]*\\u202e[^\\u2069]*\\u2069/.test(text.textContent)) continue;  // isolate marks around it
    let node = text;
    let isolated = false;
    while (node.parentElement) {
      const parent = node.parentElement;
      const style = getComputedStyle(parent);
      if (style.unicodeBidi.includes("isolate") || parent instanceof SVGTextElement) { isolated = true; break; }
      if (parent.childNodes.length > 1) break;  // other words share its line
      if (style.display !== "inline") { isolated = true; break; }  // alone in a block of its own
      node = parent;
    }
    if (!isolated) bad.push(text.parentElement.outerHTML.slice(0, 160));
  }
  return bad;
}"""


class AcceptingRunner(BaseHTTPRequestHandler):
    """A runner that accepts every dispatch and reports nothing itself: the test speaks for it with an API key."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def accepting_runner() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), AcceptingRunner)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def running_run(owner_api: Api, definition: dict[str, Any], idempotency_key: str, message: str) -> dict[str, Any]:
    """A run the accepting runner took, with a heartbeat at 42% that says `message`."""
    run = owner_api.post(f"/v1/workflow-definitions/{definition['id']}/invoke", {"idempotency_key": idempotency_key})
    owner_api.wait_for(lambda: owner_api.get(f"/v1/workflow-runs/{run['id']}")["status"] == "RUNNING",
                       "the runner to accept the run", timeout=15)
    owner_api.post(f"/v1/workflow-runs/{run['id']}/heartbeat", {"progress": 42, "message": message})
    return dict(run)


def failed_run(owner_api: Api, definition: dict[str, Any], idempotency_key: str, message: str,
               error: str) -> dict[str, Any]:
    run = running_run(owner_api, definition, idempotency_key, message)
    owner_api.post(f"/v1/workflow-runs/{run['id']}/callback", {"status": "FAILED", "error": error})
    return run


@pytest.fixture
def hostile_world(owner_api: Api, local_stack: LocalStack, accepting_runner: str) -> dict[str, Any]:
    """Folders, a document, definitions and runs whose every user-given text is hostile or at its limit."""
    root = local_stack.credentials["root_path_part_id"]
    long_folder = owner_api.post("/v1/folders", {"parent_path_part_id": root, "name": LONG_NAME})
    bidi_folder = owner_api.post("/v1/folders", {"parent_path_part_id": long_folder["path_part_id"], "name": BIDI})
    document = owner_api.post("/v1/documents", {"parent_path_part_id": bidi_folder["path_part_id"], "name": IMG + SVG,
                                                "document_type": "PLAINTEXT", "document_origin": "SOURCE"})

    def definition(name: str, description: str) -> dict[str, Any]:
        return dict(owner_api.post("/v1/workflow-definitions", {
            "name": name, "description": description, "runner_type": "SELF_HOSTED",
            "runner_config": {"url": accepting_runner, "webhook_secret": WEBHOOK_SECRET},
            "source_path_part_ids": [long_folder["path_part_id"]],
            "instruction_path_part_ids": [document["path_part_id"]],
            "output_path_part_ids": [bidi_folder["path_part_id"]], "max_run_duration_seconds": 120}))

    long_definition = definition(LONG_NAME, "D" * 4096)
    markup_definition = definition(IMG, SVG + " javascript:alert(1)")
    bidi_definition = definition(BIDI, BIDI)
    return {
        "long_folder": long_folder, "bidi_folder": bidi_folder, "document": document,
        "long_definition": long_definition, "markup_definition": markup_definition,
        "bidi_definition": bidi_definition,
        "long_run": failed_run(owner_api, long_definition, "K" * 255, "M" * 1024, "E" * 8192),
        "markup_run": failed_run(owner_api, markup_definition, "javascript:alert(1)", SVG, IMG),
        "bidi_run": running_run(owner_api, bidi_definition, BIDI, BIDI),
    }


def look(console: Console, name: str) -> None:
    """What a person checks on a page full of hostile text, at 390 and 1280 px: no sideways scrolling, no element
    made from the text, no user text reordering the console's words; then screenshots of both widths."""
    page = console.page
    for viewport in VIEWPORTS.values():
        page.set_viewport_size(viewport)
        page.wait_for_timeout(100)
        scroll_width, width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll_width <= width, f"{name} scrolls sideways at {width} px ({scroll_width} px wide)"
    assert page.locator("main img, [onerror], [onload]").count() == 0, f"{name}: markup from the API became elements"
    assert page.evaluate(UNISOLATED_OVERRIDES) == [], f"{name}: user text can reorder the words around it"
    console.screenshot(name)


def test_hostile_names_errors_and_messages_render_as_text_and_fit_a_phone(
        open_console: Callable[..., Console], local_stack: LocalStack, hostile_world: dict[str, Any]) -> None:
    world = hostile_world
    console = open_console("phone")
    console.sign_in(local_stack.credentials["api_key"])
    page = console.page

    console.open("#/runs")
    expect(page.get_by_role("region", name="Runs").get_by_text(IMG).first).to_be_visible()  # name and error, as text
    look(console, "runs")

    console.open(f"#/runs/{world['long_run']['id']}")
    expect(page.get_by_text("E" * 8192).first).to_be_visible()
    expect(page.get_by_text(f"Failed at 42% · {'M' * 1024}")).to_be_visible()
    look(console, "run-long-texts")

    console.open(f"#/runs/{world['markup_run']['id']}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"{IMG} · run")
    expect(page.get_by_text(f"Heartbeat: 42% — {SVG}")).to_be_visible()
    expect(page.get_by_text("with idempotency key “javascript:alert(1)”")).to_be_visible()
    look(console, "run-markup")

    console.open(f"#/runs/{world['bidi_run']['id']}")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("· run")
    # The override inside the name reverses the name only: the run's short id still follows it, to its right.
    page.set_viewport_size(VIEWPORTS["desktop"])
    name_right, suffix_left = page.evaluate("""() => {
      const title = document.querySelector("h1");
      const suffix = [...title.childNodes].find((n) => n.nodeType === Node.TEXT_NODE && n.textContent.includes("run"));
      const range = document.createRange();
      range.selectNodeContents(suffix);
      return [title.querySelector("bdi").getBoundingClientRect().right, range.getBoundingClientRect().left];
    }""")
    assert suffix_left >= name_right - 1
    expect(page).to_have_title(re.compile(re.escape(f"\u2068{BIDI}\u2069 · run ")))  # the tab's title isolates it too
    look(console, "run-bidi")

    console.open("#/definitions")
    expect(page.get_by_role("link", name=IMG)).to_be_visible()
    look(console, "definitions")

    console.open(f"#/definitions/{world['long_definition']['id']}")
    expect(page.get_by_text("D" * 4096)).to_be_visible()
    look(console, "definition-long")

    console.open(f"#/definitions/{world['markup_definition']['id']}")
    expect(page.get_by_text(f"{SVG} javascript:alert(1)")).to_be_visible()
    page.get_by_role("button", name="Delete").click()
    question = f"Delete {IMG} and all of its runs?"
    expect(page.get_by_role("group", name=question)).to_contain_text(question)
    look(console, "definition-markup")

    console.open(f"#/definitions/{world['bidi_definition']['id']}?edit=1")
    expect(page.get_by_label("Name")).to_have_value(BIDI)
    look(console, "definition-edit-bidi")

    console.open(f"#/documents/{world['bidi_folder']['id']}?document={world['document']['id']}")
    breadcrumb = page.get_by_role("navigation", name="Breadcrumb")
    expect(breadcrumb.get_by_role("link", name=LONG_NAME)).to_be_visible()
    expect(page.get_by_role("heading", name=IMG + SVG)).to_be_visible()
    look(console, "documents")

    console.open("#/analytics")
    expect(page.get_by_role("heading", name="Top definitions")).to_be_visible()
    page.get_by_role("img", name="Top definitions").first.wait_for()
    look(console, "analytics")


def test_ids_that_name_nothing_say_so(console: Console, local_stack: LocalStack) -> None:
    console.sign_in(local_stack.credentials["api_key"])
    page = console.page
    stranger = uuid.uuid4()
    for route, title in [
        ("#/runs/not-a-uuid", "Run not found"), (f"#/runs/{stranger}", "Run not found"),
        ("#/runs/%E0%A4%A", "Run not found"),  # an escape that does not decode
        ("#/definitions/not-a-uuid", "Definition not found"), (f"#/definitions/{stranger}", "Definition not found"),
        ("#/definitions/../x", "Page not found"), ("#/nowhere", "Page not found"),
        ("#/documents/%00", "Folder not found"), (f"#/documents/{stranger}", "Folder not found"),
    ]:
        console.open(route)
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        expect(page.locator("main")).not_to_contain_text("HTTP 4")
        expect(page.locator("main")).not_to_contain_text("Input should be")
    console.screenshot("folder-not-found")

    console.open(f"#/documents?document={stranger}")
    expect(page.get_by_role("heading", name="Document not found")).to_be_visible()

    # A huge query is ignored, like any unknown parameter.
    console.open("#/runs?" + "junk=" + "x" * 50_000 + "&status=<b>")
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()


def test_a_key_revoked_while_signed_in_signs_out_with_a_message(
        console: Console, owner_api: Api, accepting_runner: str, make_definition: Callable[..., dict[str, Any]],
        local_stack: LocalStack) -> None:
    second_key = owner_api.post("/v1/api-keys", {"name": "console tab"})
    run = running_run(owner_api, make_definition(accepting_runner, name="Watched while revoked"), "revoked", "half")
    console.sign_in(second_key["key"])
    page = console.open(f"#/runs/{run['id']}")
    expect(page.get_by_text("Live", exact=False).first).to_be_visible()

    # The owner revokes the tab's key with their other key; the page's next refresh finds out.
    owner_api.call("DELETE", f"/v1/api-keys/{second_key['id']}", expect=204)
    expect(page.get_by_role("alert")).to_contain_text("Your API key stopped working", timeout=20_000)
    expect(page.get_by_label("API key")).to_be_visible()
    expect(page.get_by_role("navigation", name="Console")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    console.screenshot("signed-out-after-revoke")


def test_double_submits_create_one_folder_and_one_definition(
        console: Console, owner_api: Api, local_stack: LocalStack, knowledge: dict[str, dict[str, Any]]) -> None:
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open("#/documents")
    name = f"Twice {uuid.uuid4().hex[:6]}"
    field = page.get_by_label("New folder name")
    field.fill(name)
    field.press("Enter")
    field.press("Enter")  # again, while the first is on its way
    expect(page.get_by_role("region", name="Folder contents").get_by_role("link", name=name)).to_be_visible()
    root = owner_api.get(f"/v1/path-parts/{local_stack.credentials['root_path_part_id']}")
    contents = owner_api.get(f"/v1/folders/{root['metadata_obj_id']}/contents?limit=100")["items"]
    assert [item["name"] for item in contents].count(name) == 1

    page = console.open("#/definitions?new=1")
    title = f"Defined once {uuid.uuid4().hex[:6]}"
    page.get_by_label("Name", exact=True).fill(title)
    page.get_by_label("Runner URL").fill("http://127.0.0.1:9/")
    page.get_by_label("Webhook secret").fill(WEBHOOK_SECRET)
    for group, part in [("Sources", "sources"), ("Instructions", "instructions"), ("Outputs", "outputs")]:
        page.get_by_role("group", name=group).get_by_label(knowledge[part]["materialized_path"]).check()
    create = page.get_by_role("button", name="Create definition")
    create.dblclick()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    found = owner_api.get(f"/v1/workflow-definitions?search={title.replace(' ', '%20')}")
    assert found["total"] == 1
