"""Changing the knowledge base from the documents pages: a new version of a document uploaded from its panel,
deletes of documents and folders confirmed in the page (refused while a run writes there, hidden from readers),
and an ingestion cancelled while it processes."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import FilePayload, Locator, Page, expect

from tests.e2e.conftest import LocalStack
from tests.e2e.console.conftest import WEBHOOK_SECRET, Api, Console

pytestmark = pytest.mark.e2e

FIRST_DRAFT = "# Travel policy\n\nTrains for trips under four hours.\n"
SECOND_DRAFT = "# Travel policy\n\nTrains for trips under five hours; economy flights beyond.\n"
# About 8 MB of text: its ingestion stays processing for several seconds (about 6 s per 4 MB on two busy cores),
# long enough to cancel it from the page.
LONG_TEXT = "The retention policy keeps invoices for seven years and contracts for ten.\n" * 110_000


def text_file(name: str, text: str) -> FilePayload:
    return {"name": name, "mimeType": "text/markdown", "buffer": text.encode()}


def drop_file(page: Page, label: str, name: str, text: str) -> None:
    """What a person dragging a file from their desktop onto the drop zone of the control `label` makes happen."""
    data = page.evaluate_handle(
        """([name, text]) => {
             const transfer = new DataTransfer();
             transfer.items.add(new File([text], name, {type: "text/markdown"}));
             return transfer;
           }""", [name, text])
    zone = page.get_by_label(label, exact=True)
    for event in ("dragenter", "dragover", "drop"):
        zone.dispatch_event(event, {"dataTransfer": data})


def expect_ingested(uploads: Locator, name: str) -> None:
    row = uploads.get_by_role("listitem").filter(has_text=name)
    expect(row.get_by_role("progressbar")).to_have_attribute("value", "100", timeout=15000)
    expect(row).to_contain_text("completed", timeout=20000)


def confirmation(page: Page, question: str) -> Locator:
    return page.get_by_role("group", name=question)


def new_document(owner_api: Api, folder: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(owner_api.post("/v1/documents", {"parent_path_part_id": folder["path_part_id"], "name": name,
                                                 "document_type": "PLAINTEXT", "document_origin": "SOURCE"}))


def test_upload_a_new_version_from_the_document_panel(console: Console, local_stack: LocalStack,
                                                      knowledge: dict[str, dict[str, Any]]) -> None:
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open(f"#/documents/{knowledge['sources']['id']}")
    page.get_by_label("Upload files", exact=True).set_input_files([text_file("travel.md", FIRST_DRAFT)])
    expect_ingested(page.get_by_role("list", name="Uploads"), "travel.md")
    page.get_by_role("region", name="Folder contents").get_by_role("link", name="travel.md").click()

    panel = page.get_by_role("region", name="travel.md")
    drop_file(page, "Upload a new version", "travel-v2.md", SECOND_DRAFT)
    expect_ingested(panel.get_by_role("list", name="Version uploads"), "travel-v2.md")

    versions = panel.get_by_role("region", name="Versions")
    expect(versions.get_by_role("row")).to_have_count(3)  # the header and both versions
    newest, oldest = versions.get_by_role("row").nth(1), versions.get_by_role("row").nth(2)
    # Versions count from v0, the newest first.
    expect(newest).to_contain_text("v1")
    expect(newest).to_contain_text("active")
    expect(newest).to_contain_text("completed")
    expect(newest.get_by_role("link", name="Download v1")).to_have_attribute("href", re.compile("travel-v2.md"))
    expect(oldest).to_contain_text("v0")
    expect(oldest).not_to_contain_text("active")
    expect(panel.get_by_role("definition").filter(has_text="v1")).to_be_visible()  # "Active version"

    # The file control takes a version too.
    panel.get_by_label("Upload a new version").set_input_files([text_file("travel-v3.md", SECOND_DRAFT + "\n")])
    expect_ingested(panel.get_by_role("list", name="Version uploads"), "travel-v3.md")
    expect(versions.get_by_role("row")).to_have_count(4)
    expect(versions.get_by_role("row").nth(1)).to_contain_text("v2")
    expect(versions.get_by_role("row").nth(1)).to_contain_text("active")
    console.screenshot("documents-new-version")


def test_delete_a_folder_and_a_document_after_confirming_in_the_page(
        console: Console, owner_api: Api, local_stack: LocalStack, knowledge: dict[str, dict[str, Any]]) -> None:
    sources = knowledge["sources"]
    old = owner_api.post("/v1/folders", {"parent_path_part_id": sources["path_part_id"], "name": "Old contracts"})
    nested = owner_api.post("/v1/folders", {"parent_path_part_id": sources["path_part_id"], "name": "Drafts"})
    obsolete = new_document(owner_api, sources, "Obsolete <img src=x onerror=alert(1)> memo.md")
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open(f"#/documents/{sources['id']}")
    contents = page.get_by_role("region", name="Folder contents")

    # Keep it: nothing is deleted, and the focus goes back where it was.
    opener = contents.get_by_role("button", name="Delete folder Old contracts")
    opener.click()
    question = confirmation(page, "Delete the folder “Old contracts” and everything in it?")
    expect(question).to_contain_text("This cannot be undone.")
    console.screenshot("documents-confirm-delete")
    question.get_by_role("button", name="Keep it").click()
    expect(question).to_have_count(0)
    expect(opener).to_be_focused()
    opener.press("Enter")
    page.keyboard.press("Escape")
    expect(question).to_have_count(0)

    opener.click()
    question.get_by_role("button", name="Delete folder", exact=True).click()
    expect(contents.get_by_role("link", name="Old contracts")).to_have_count(0)
    expect(page.get_by_role("status")).to_contain_text("Folder “Old contracts” deleted.")
    owner_api.call("GET", f"/v1/folders/{old['id']}", expect=404)

    # A document, from its panel: the panel closes and the listing no longer holds it.
    contents.get_by_role("link", name=obsolete["name"]).click()
    panel = page.get_by_role("region", name=obsolete["name"])
    panel.get_by_role("button", name="Delete document").click()
    confirmation(page, f"Delete the document “{obsolete['name']}”").get_by_role(
        "button", name="Delete document", exact=True).click()
    expect(panel).to_have_count(0)
    expect(contents.get_by_role("link", name="Drafts")).to_be_visible()
    expect(contents.get_by_role("link", name=obsolete["name"])).to_have_count(0)
    owner_api.call("GET", f"/v1/documents/{obsolete['id']}", expect=404)
    assert page.locator("img").count() == 0

    # The folder one is in: the page goes up to its parent.
    contents.get_by_role("link", name="Drafts").click()
    page.get_by_role("button", name="Delete this folder").click()
    confirmation(page, "Delete the folder “Drafts”").get_by_role("button", name="Delete folder", exact=True).click()
    crumbs = page.get_by_role("navigation", name="Breadcrumb")
    expect(crumbs.get_by_role("link", name=sources["name"])).to_have_attribute("aria-current", "page")
    expect(page.get_by_text("This folder is empty")).to_be_visible()
    owner_api.call("GET", f"/v1/folders/{nested['id']}", expect=404)


def test_a_folder_a_running_run_writes_to_is_not_deleted(
        console: Console, owner_api: Api, local_stack: LocalStack, start_runner: Callable[..., str],
        make_definition: Callable[..., dict[str, Any]], knowledge: dict[str, dict[str, Any]]) -> None:
    definition = make_definition(start_runner(WEBHOOK_SECRET, "--delay", "30"), name="Slow summary")
    run = owner_api.post(f"/v1/workflow-definitions/{definition['id']}/invoke")
    outputs = knowledge["outputs"]
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open("#/documents")
    page.get_by_role("region", name="Folder contents").get_by_role(
        "button", name=f"Delete folder {outputs['name']}").click()
    question = confirmation(page, f"Delete the folder “{outputs['name']}”")
    question.get_by_role("button", name="Delete folder", exact=True).click()
    expect(question.get_by_role("alert")).to_contain_text("still PENDING or RUNNING")
    expect(page.get_by_role("region", name="Folder contents").get_by_role("link", name=outputs["name"])).to_be_visible()
    console.screenshot("documents-delete-refused")
    owner_api.get(f"/v1/folders/{outputs['id']}")
    owner_api.post(f"/v1/workflow-runs/{run['id']}/stop")


def test_a_reader_sees_no_delete_and_no_new_version(console: Console, owner_api: Api, local_stack: LocalStack,
                                                    knowledge: dict[str, dict[str, Any]]) -> None:
    tenant_id, sources = local_stack.credentials["tenant_id"], knowledge["sources"]
    handbook = new_document(owner_api, sources, "Handbook.md")
    owner_api.post("/v1/folders", {"parent_path_part_id": sources["path_part_id"], "name": "Archive"})
    reader = local_stack.admin("create-user", "--tenant-id", tenant_id, "--email", "read-only@example.com",
                               "--role", "USER")
    owner_api.post("/v1/user-permissions", {"tenant_id": tenant_id, "user_id": reader["user_id"],
                                            "path_part_id": sources["path_part_id"], "capability": "READ_ONLY"})
    console.sign_in(reader["api_key"])
    page = console.open(f"#/documents/{sources['id']}?document={handbook['id']}")
    expect(page.get_by_role("region", name="Handbook.md")).to_contain_text("v0 active")
    contents = page.get_by_role("region", name="Folder contents")
    expect(contents.get_by_role("link", name="Archive")).to_be_visible()
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    expect(contents.get_by_role("columnheader", name="Actions")).to_have_count(0)
    expect(page.get_by_label("Upload a new version")).to_have_count(0)
    console.screenshot("documents-read-only")


def test_cancel_an_ingestion_while_it_processes(console: Console, owner_api: Api, local_stack: LocalStack,
                                                knowledge: dict[str, dict[str, Any]]) -> None:
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open(f"#/documents/{knowledge['sources']['id']}")
    page.get_by_label("Upload files", exact=True).set_input_files([text_file("records.txt", LONG_TEXT)])
    uploaded = page.get_by_role("list", name="Uploads").get_by_role("listitem").filter(has_text="records.txt")
    expect(uploaded.get_by_role("progressbar")).to_have_attribute("value", "100", timeout=15000)

    ingestion = page.get_by_role("region", name="All ingestions").get_by_role("row").filter(has_text="records.txt")
    expect(ingestion).to_contain_text("processing", timeout=10000)
    ingestion.get_by_role("button", name="Cancel").click()
    expect(ingestion).to_contain_text("cancelled")
    expect(uploaded).to_contain_text("cancelled")
    expect(ingestion.get_by_role("button", name="Rerun")).to_be_visible()
    console.screenshot("documents-ingestion-cancelled")
