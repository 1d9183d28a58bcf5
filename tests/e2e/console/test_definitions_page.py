"""The definitions pages: create through the form, search, the detail without the secret, Invoke, escaping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import LocalStack
from tests.e2e.console.conftest import WEBHOOK_SECRET, Api, Console

pytestmark = pytest.mark.e2e

HOSTILE = "<img src=x onerror=alert(1)>"


def test_a_definition_made_with_the_form_is_listed_and_found_by_search(
        console: Console, owner_api: Api, local_stack: LocalStack, start_runner: Callable[..., str],
        knowledge: dict[str, dict[str, Any]], make_definition: Callable[..., dict[str, Any]]) -> None:
    runner_url = start_runner(WEBHOOK_SECRET)
    make_definition(runner_url, name="Quarterly digest")
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open("#/definitions")
    page.get_by_role("button", name="New definition").click()
    expect(page.get_by_role("heading", name="New definition")).to_be_visible()

    # Without a secret the runner cannot sign: the form says so at the field and saves nothing.
    page.get_by_label("Name").fill("Summarise policies weekly")
    page.get_by_label("Runner URL").fill(runner_url)
    page.get_by_role("button", name="Create definition").click()
    expect(page.get_by_role("alert")).to_contain_text("Webhook secret")
    page.get_by_label("Webhook secret").fill(WEBHOOK_SECRET)
    # Nothing picked: the API's 422 names each list.
    page.get_by_role("button", name="Create definition").click()
    expect(page.get_by_role("group", name="Sources")).to_contain_text("at least 1")

    page.get_by_role("group", name="Sources").get_by_label(knowledge["sources"]["materialized_path"]).check()
    page.get_by_role("group", name="Instructions").get_by_label(
        knowledge["instructions"]["materialized_path"]).check()
    page.get_by_role("group", name="Outputs").get_by_label(knowledge["outputs"]["materialized_path"]).check()
    page.get_by_label("Description").fill("Reads the policies, writes summaries")
    page.get_by_label("Max run duration (seconds)").fill("120")
    console.screenshot("definition-form")
    page.get_by_role("button", name="Create definition").click()

    expect(page.get_by_role("heading", name="Summarise policies weekly")).to_be_visible()
    expect(page.get_by_text(knowledge["outputs"]["materialized_path"])).to_be_visible()
    created = owner_api.get("/v1/workflow-definitions?search=weekly")["items"]
    assert [d["name"] for d in created] == ["Summarise policies weekly"]
    assert created[0]["max_run_duration_seconds"] == 120

    page.get_by_role("navigation", name="Console").get_by_role("link", name="Definitions").click()
    listing = page.get_by_role("region", name="Definitions")
    expect(listing.get_by_role("link", name="Summarise policies weekly")).to_be_visible()
    expect(listing.get_by_role("link", name="Quarterly digest")).to_be_visible()
    expect(listing).to_contain_text("Never run")
    console.screenshot("definitions")

    page.get_by_label("Search").fill("WEEKLY")
    expect(listing.get_by_role("link", name="Quarterly digest")).to_have_count(0)
    expect(listing.get_by_role("link", name="Summarise policies weekly")).to_be_visible()
    assert "search=WEEKLY" in page.url
    page.get_by_label("Search").fill("nothing like it")
    expect(page.get_by_text("No definitions match this search.")).to_be_visible()


def test_the_detail_shows_the_configuration_and_schedule_but_never_the_secret(
        console: Console, local_stack: LocalStack, start_runner: Callable[..., str],
        knowledge: dict[str, dict[str, Any]], make_definition: Callable[..., dict[str, Any]]) -> None:
    definition = make_definition(start_runner(WEBHOOK_SECRET), name="Nightly summary",
                                 schedule_cadence="DAILY", schedule_start_at="2030-01-01T02:30",
                                 schedule_timezone="Europe/Paris",
                                 retry_policy={"max_attempts": 3, "backoff_seconds": 5, "backoff_multiplier": 2},
                                 heartbeat_timeout_seconds=30)
    assert definition["next_run_at"]
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open(f"#/definitions/{definition['id']}")

    expect(page.get_by_role("heading", name="Nightly summary")).to_be_visible()
    config = page.get_by_role("region", name="Configuration")
    expect(config).to_contain_text("Set, never shown")
    expect(config).to_contain_text("Up to 3 attempts")
    expect(page.get_by_role("region", name="Knowledge")).to_contain_text(knowledge["sources"]["materialized_path"])
    schedule = page.get_by_role("region", name="Schedule")
    expect(schedule).to_contain_text("Next run at")
    next_run = datetime.fromisoformat(definition["next_run_at"]).astimezone(UTC)
    expect(schedule.locator(f"time[datetime='{next_run.strftime('%Y-%m-%dT%H:%M:%S.000Z')}']").first).to_be_visible()
    expect(schedule).to_contain_text("Europe/Paris")
    expect(page.get_by_text("No runs yet.")).to_be_visible()
    console.screenshot("definition-detail")

    # The edit form asks for the secret again and never fills it in.
    page.get_by_role("button", name="Edit").click()
    expect(page.get_by_label("Webhook secret")).to_have_value("")
    expect(page.get_by_label("Cadence")).to_have_value("DAILY")
    expect(page.get_by_label("First run at")).to_have_value("2030-01-01T02:30")
    assert WEBHOOK_SECRET not in page.content()
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", name="Nightly summary")).to_be_visible()
    assert WEBHOOK_SECRET not in page.content()
    assert WEBHOOK_SECRET.removeprefix("whsec_") not in page.content()

    # Saving an edit replaces the whole definition: the picked paths and the schedule come back filled in.
    page.get_by_role("button", name="Edit").click()
    page.get_by_label("Webhook secret").fill(WEBHOOK_SECRET)
    page.get_by_label("Max attempts").fill("1")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("region", name="Configuration")).to_contain_text("No automatic retries")
    expect(schedule).to_contain_text("Europe/Paris")
    expect(page.get_by_role("region", name="Knowledge")).to_contain_text(knowledge["outputs"]["materialized_path"])
    assert WEBHOOK_SECRET not in page.content()


def test_a_double_clicked_invoke_makes_one_run_and_opens_it(
        console: Console, owner_api: Api, local_stack: LocalStack, start_runner: Callable[..., str],
        make_definition: Callable[..., dict[str, Any]]) -> None:
    definition = make_definition(start_runner(WEBHOOK_SECRET, "--delay", "2"), name="Invoke me")
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open(f"#/definitions/{definition['id']}")
    page.get_by_role("button", name="Invoke").dblclick()

    page.wait_for_url("**#/runs/*")
    runs = owner_api.get(f"/v1/workflow-definitions/{definition['id']}/runs")
    assert runs["total"] == 1
    run = runs["items"][0]
    assert page.url.endswith(f"#/runs/{run['id']}")

    # While its run is open the definition cannot be deleted: the page says why and keeps it.
    page = console.open(f"#/definitions/{definition['id']}")
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("group", name="Delete Invoke me and all of its runs?").get_by_role(
        "button", name="Delete definition").click()
    expect(page.get_by_role("alert")).to_contain_text("run")
    owner_api.wait_for(lambda: owner_api.get(f"/v1/workflow-runs/{run['id']}")["status"] == "COMPLETED",
                       "the run to complete")

    page = console.open("#/definitions")
    row = page.get_by_role("region", name="Definitions").get_by_role("row").filter(
        has=page.get_by_role("link", name="Invoke me"))
    expect(row).to_contain_text("COMPLETED")
    expect(row.get_by_role("link", name=f"Run {run['id']}, COMPLETED")).to_be_visible()


def test_a_hostile_definition_name_renders_as_text(
        console: Console, local_stack: LocalStack, start_runner: Callable[..., str],
        make_definition: Callable[..., dict[str, Any]]) -> None:
    definition = make_definition(start_runner(WEBHOOK_SECRET), name=HOSTILE, description=HOSTILE)
    console.sign_in(local_stack.credentials["api_key"])
    page = console.open("#/definitions")
    expect(page.get_by_role("region", name="Definitions").get_by_role("link", name=HOSTILE)).to_be_visible()
    assert page.locator("img[src=x]").count() == 0

    page.get_by_role("link", name=HOSTILE).click()
    expect(page.get_by_role("heading", name=HOSTILE)).to_be_visible()
    expect(page.get_by_role("region", name="Configuration")).to_contain_text(HOSTILE)
    assert page.locator("img[src=x]").count() == 0
    assert page.url.endswith(f"#/definitions/{definition['id']}")

    page.get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Keep it").click()
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Delete definition").click()
    expect(page.get_by_role("heading", name="Definitions")).to_be_visible()
    expect(page.get_by_role("link", name=HOSTILE)).to_have_count(0)
    # The console fixture fails the test if any dialog (an injected alert()) opened.
