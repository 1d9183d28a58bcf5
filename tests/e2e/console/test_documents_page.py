"""The documents pages: browsing the tree, new folders, uploads straight to the bucket by drag and drop or
the file control, each upload's ingestion followed live, and a rerun from the page."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import FilePayload, Locator, Page, expect

from tests.e2e.conftest import LocalStack
from tests.e2e.console.conftest import Api, Console

pytestmark = pytest.mark.e2e

MARKDOWN = b"# Leave policy\n\nEveryone gets twenty-five days of leave a year.\n\nCarry-over ends in March.\n"


def markdown_file(name: str) -> FilePayload:
    return {"name": name, "mimeType": "text/markdown", "buffer": MARKDOWN}


def drop_file(page: Page, name: str) -> None:
    """What a person dragging a file from their desktop onto the drop zone makes the browser do."""
    data = page.evaluate_handle(
        """([name, text]) => {
             const transfer = new DataTransfer();
             transfer.items.add(new File([text], name, {type: "text/markdown"}));
             return transfer;
           }""", [name, MARKDOWN.decode()])
    zone = page.get_by_label("Upload files", exact=True)
    for event in ("dragenter", "dragover", "drop"):
        zone.dispatch_event(event, {"dataTransfer": data})


def upload_row(page: Page, name: str) -> Locator:
    return page.get_by_role("list", name="Uploads").get_by_role("listitem").filter(has_text=name)


def expect_ingested(page: Page, name: str) -> None:
    """The file reached the bucket in full, and its ingestion completed with chunks."""
    expect(page.get_by_label(f"Upload of {name}")).to_have_attribute("value", "100", timeout=15000)
    row = upload_row(page, name)
    expect(row).to_contain_text("completed", timeout=20000)
    expect(row).to_contain_text("1 chunk")


def test_browse_the_tree_and_create_a_folder(console: Console, local_stack: LocalStack,
                                             knowledge: dict[str, dict[str, Any]]) -> None:
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open("#/documents")
    contents = page.get_by_role("region", name="Folder contents")
    sources = knowledge["sources"]
    page.get_by_role("link", name=sources["name"]).click()
    crumbs = page.get_by_role("navigation", name="Breadcrumb")
    expect(crumbs.get_by_role("link", name=sources["name"])).to_have_attribute("aria-current", "page")
    expect(page.get_by_text("This folder is empty")).to_be_visible()

    page.get_by_label("New folder name").fill("Contracts 2024")
    page.get_by_role("button", name="Create folder").click()
    expect(contents.get_by_role("link", name="Contracts 2024")).to_be_visible()

    contents.get_by_role("link", name="Contracts 2024").click()
    expect(crumbs.get_by_role("link", name="Contracts 2024")).to_have_attribute("aria-current", "page")
    console.screenshot("documents-subfolder")
    crumbs.get_by_role("link", name=sources["name"]).click()
    expect(contents.get_by_role("link", name="Contracts 2024")).to_be_visible()
    crumbs.get_by_role("link", name="Root /").click()
    expect(contents.get_by_role("link", name=knowledge["outputs"]["name"])).to_be_visible()
    expect(contents).to_contain_text("Document · PLAINTEXT")

    # A name the API refuses is explained where it was typed.
    page.get_by_label("New folder name").fill("a/b")
    page.get_by_role("button", name="Create folder").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot contain '/'")
    console.screenshot("documents")


def test_upload_by_drag_and_drop_and_file_control_then_watch_the_ingestion(
        console: Console, local_stack: LocalStack, knowledge: dict[str, dict[str, Any]]) -> None:
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open(f"#/documents/{knowledge['sources']['id']}")
    drop_file(page, "dropped-policy.md")
    page.get_by_label("Upload files", exact=True).set_input_files([markdown_file("chosen-policy.md")])

    for name in ("dropped-policy.md", "chosen-policy.md"):
        expect_ingested(page, name)
        expect(page.get_by_role("region", name="Folder contents").get_by_role("link", name=name)).to_be_visible()
    ingestions = page.get_by_role("region", name="All ingestions")
    expect(ingestions.get_by_role("row").filter(has_text="chosen-policy.md")).to_contain_text("completed")
    console.screenshot("documents-uploaded")


def test_a_hostile_file_name_renders_as_text(console: Console, local_stack: LocalStack,
                                             knowledge: dict[str, dict[str, Any]]) -> None:
    hostile = "<img src=x onerror=alert(1)>.md"
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open(f"#/documents/{knowledge['sources']['id']}")
    page.get_by_label("Upload files", exact=True).set_input_files([markdown_file(hostile)])
    expect_ingested(page, hostile)
    expect(page.get_by_role("region", name="Folder contents").get_by_role("link", name=hostile)).to_be_visible()
    expect(page.get_by_role("region", name="All ingestions")).to_contain_text(hostile)
    assert page.locator("img").count() == 0


def test_rerun_an_ingestion_from_the_document_panel(console: Console, owner_api: Api, local_stack: LocalStack,
                                                   knowledge: dict[str, dict[str, Any]]) -> None:
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open(f"#/documents/{knowledge['sources']['id']}")
    page.get_by_label("Upload files", exact=True).set_input_files([markdown_file("rerun-me.md")])
    expect_ingested(page, "rerun-me.md")
    upload_row(page, "rerun-me.md").get_by_role("link", name="rerun-me.md").click()

    panel = page.get_by_role("region", name="rerun-me.md")
    versions = panel.get_by_role("region", name="Versions")
    expect(versions).to_contain_text("completed")
    expect(panel.get_by_role("link", name="Download the active version")).to_have_attribute(
        "rel", "noopener noreferrer")
    versions.get_by_role("button", name="Rerun").click()
    expect(page.get_by_role("status")).to_contain_text("attempt 2")

    document_id = page.url.rsplit("=", 1)[-1]
    workflow_id = next(i["workflow_id"] for i in owner_api.get("/v1/workflows/document_versions?limit=5")["items"]
                       if i["document_id"] == document_id)
    detail = owner_api.wait_for(
        lambda: (d := owner_api.get(f"/v1/workflows/document_versions/{workflow_id}"))["status"] == "completed"
        and d["run_id"].endswith("-2") and d, "the rerun to complete")
    expect(versions).to_contain_text("completed")
    expect(versions.get_by_role("button", name="Rerun")).to_be_enabled()
    assert detail["chunks_processed"] == 1
    console.screenshot("documents-document")


def test_a_user_starts_from_what_is_shared_with_them(console: Console, owner_api: Api, local_stack: LocalStack,
                                                     knowledge: dict[str, dict[str, Any]]) -> None:
    tenant_id = local_stack.credentials["tenant_id"]
    member = local_stack.admin("create-user", "--tenant-id", tenant_id, "--email", "reader@example.com",
                               "--role", "USER")
    owner_api.post("/v1/user-permissions", {"tenant_id": tenant_id, "user_id": member["user_id"],
                                            "path_part_id": knowledge["sources"]["path_part_id"],
                                            "capability": "READ_ONLY"})
    console.sign_in(member["api_key"])
    page = console.open("#/documents")
    shared = page.get_by_role("region", name="Shared with you")
    expect(shared).to_contain_text("Read only")
    shared.get_by_role("link", name=f"/{knowledge['sources']['name']}").click()
    crumbs = page.get_by_role("navigation", name="Breadcrumb")
    expect(crumbs.get_by_role("link", name=knowledge["sources"]["name"])).to_have_attribute("aria-current", "page")
    expect(crumbs.get_by_role("link", name="Root /")).to_have_count(0)

    # Read-only: the page offers no upload or new folder, and says why.
    expect(page.get_by_text("uploads and new folders need write access")).to_be_visible()
    expect(page.get_by_label("Upload files", exact=True)).to_have_count(0)
    console.screenshot("documents-shared")
