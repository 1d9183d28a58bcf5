"""`GET /v1/workflow-runs` and a definition's runs: filters, sorts, totals and who sees what.

Runs come from the `world` fixture (`seeded_runs`: the run store's own writers, placed in time). The
same queries are also answered with fewer run indexes deployed (a stack mid-migration), and must give
the same pages.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from ksapi.models import WorkflowRunResponse

from ksflow import aws, clock
from ksflow.identity.models import CreatedTenant
from ksflow.runindex import listing
from ksflow.workflows import run_store
from ksflow.workflows.models import RunStatus
from tests.conftest import call_api
from tests.unit.seeded_runs import BASE, World, end, retry_by_hand


def _list(api_key: str, query: str = "", path: str = "/v1/workflow-runs") -> dict[str, Any]:
    response = call_api("GET", f"{path}?{query}", api_key=api_key)
    assert response.status == 200, (query, response.body)
    return dict(response.body)


def _names(world: World, page: dict[str, Any]) -> str:
    by_id = {run.id: name for name, run in world.runs.items()}
    return "".join(by_id[item["id"]] for item in page["items"])


def _every_page(world: World, api_key: str, query: str, limit: int = 3) -> tuple[str, int]:
    """All pages of a listing, their names concatenated, and the total each page reported (all equal)."""
    names, totals, offset = "", set(), 0
    while True:
        page = _list(api_key, f"{query}&limit={limit}&offset={offset}")
        totals.add(page["total"])
        names += _names(world, page)
        offset += limit
        if offset >= page["total"]:
            break
    assert len(totals) == 1, totals
    return names, totals.pop()


@pytest.fixture(params=[7, 1], ids=["all-indexes", "one-index"])
def deployed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Every answer must be the same whether its own index serves it or the bounded path does."""
    monkeypatch.setenv("RUN_INDEX_COUNT", str(request.param))
    return int(request.param)


CASES = [
    ("", "kjihgfedcba"),
    ("sort_dir=ASC", "abcdefghijk"),
    ("status=FAILED", "gfb"),
    ("status=PENDING&status=RUNNING", "jied"),
    ("state=IN_PROGRESS", "id"),
    ("status=COMPLETED&state=FAILED", "khgfcba"),
    ("mine=true", "jfeda"),
    ("invoked_by={admin}", "khb"),
    ("owner_id={admin}", "khb"),
    ("definition_id={member_definition}", "kigec"),
    ("definition_id={member_definition}&sort_dir=ASC", "cegik"),
    ("trigger=SCHEDULE", "f"),
    ("created_after={m3}", "kjihgfed"),
    ("created_before={m3}", "cba"),
    ("created_after={m3}&created_before={m6}", "fed"),
    ("status=COMPLETED&created_after={m3}", "kh"),
    # Ranges holding whole 15-minute buckets: their totals come from the aggregates, edges counted by key.
    ("created_after={m_10}&created_before={m20}", "kjihgfedcba"),
    ("created_after={m0}&created_before={m15}", "kjihgfedcba"),
    ("created_before={m20}", "kjihgfedcba"),
    ("status=FAILED&created_after={m_10}&created_before={m20}", "gfb"),
    ("mine=true&created_after={m_10}", "jfeda"),
    ("definition_id={member_definition}&created_after={m_10}&created_before={m20}", "kigec"),
    ("sort_by=COMPLETED_AT", "fkgbhac" + "jied"),
    ("sort_by=COMPLETED_AT&sort_dir=ASC", "cahbgkf" + "deij"),
    ("status=FAILED&mine=true", "f"),
    ("definition_id={owner_definition}&status=PENDING", "j"),
    ("definition_id={owner_definition}&sort_by=COMPLETED_AT&sort_dir=ASC", "ahbf" + "dj"),
]


def _query(world: World, template: str) -> str:
    return template.format(admin=world.admin.user_id, member_definition=world.member_definition["id"],
                           owner_definition=world.owner_definition["id"],
                           m3=clock.iso(BASE + timedelta(minutes=3)), m6=clock.iso(BASE + timedelta(minutes=6)),
                           m_10=clock.iso(BASE - timedelta(minutes=10)), m0=clock.iso(BASE),
                           m15=clock.iso(BASE + timedelta(minutes=15)), m20=clock.iso(BASE + timedelta(minutes=20)))


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[c[0] or "none" for c in CASES])
def test_admin_listings(world: World, deployed: int, query: str, expected: str) -> None:
    names, total = _every_page(world, world.tenant.api_key, _query(world, query))
    assert (names, total) == (expected, len(expected))


def test_started_at_orders_by_the_current_attempts_start(world: World, deployed: int) -> None:
    expected = "".join(sorted(world.runs, key=lambda n: (world.runs[n].started_at, world.runs[n].id), reverse=True))
    assert _every_page(world, world.tenant.api_key, "sort_by=STARTED_AT") == (expected, 11)
    assert _every_page(world, world.tenant.api_key, "sort_by=STARTED_AT&sort_dir=ASC") == (expected[::-1], 11)


USER_CASES = [
    ("", "kigec"),
    ("status=COMPLETED", "kc"),
    ("status=RUNNING&status=PENDING", "ie"),
    ("mine=true", "igc"),
    ("created_before={m3}", "c"),
    ("status=COMPLETED&created_after={m_10}&created_before={m20}", "kc"),
    ("sort_by=COMPLETED_AT", "kgc" + "ie"),
]


@pytest.mark.parametrize(("query", "expected"), USER_CASES, ids=[c[0] or "none" for c in USER_CASES])
def test_a_user_sees_the_runs_of_its_own_definitions(world: World, deployed: int, query: str, expected: str) -> None:
    names, total = _every_page(world, world.member.api_key, _query(world, query))
    assert (names, total) == (expected, len(expected))


def test_a_user_cannot_list_another_users_definition(world: World) -> None:
    response = call_api("GET", f"/v1/workflow-runs?definition_id={world.owner_definition['id']}",
                        api_key=world.member.api_key)
    assert response.status == 404, response.body
    runs_of = call_api("GET", f"/v1/workflow-definitions/{world.owner_definition['id']}/runs",
                       api_key=world.member.api_key)
    assert runs_of.status == 404


def test_other_tenants_see_nothing(world: World, other_tenant: CreatedTenant) -> None:
    page = _list(other_tenant.api_key)
    assert (page["items"], page["total"]) == ([], 0)
    foreign = call_api("GET", f"/v1/workflow-runs?definition_id={world.owner_definition['id']}",
                       api_key=other_tenant.api_key)
    assert foreign.status == 404


def test_items_parse_with_the_sdk_and_pages_hold_limit(world: World) -> None:
    page = _list(world.tenant.api_key, "limit=4&offset=2")
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (11, 4, 2, 4)
    assert _names(world, page) == "ihgf"
    for item in page["items"]:
        WorkflowRunResponse.model_validate(item)


def test_a_definitions_runs_take_the_same_sort_and_dates(world: World, deployed: int) -> None:
    path = f"/v1/workflow-definitions/{world.owner_definition['id']}/runs"
    assert _names(world, _list(world.tenant.api_key, "", path)) == "jhfdba"
    assert _names(world, _list(world.tenant.api_key, "sort_dir=ASC", path)) == "abdfhj"
    ranged = _list(world.tenant.api_key, _query(world, "created_after={m3}&created_before={m6}"), path)
    assert (_names(world, ranged), ranged["total"]) == ("fd", 2)
    completed = _list(world.tenant.api_key, "sort_by=COMPLETED_AT", path)
    assert (_names(world, completed), completed["total"]) == ("fbha" + "jd", 6)


def test_totals_follow_status_changes_retries_and_deletes(world: World) -> None:
    key = world.tenant.api_key
    assert _list(key, "status=RUNNING")["total"] == 2
    end(world.runs["d"], RunStatus.COMPLETED)
    assert (_list(key, "status=RUNNING")["total"], _list(key, "status=COMPLETED")["total"]) == (1, 5)
    # A retry by hand reopens a FAILED run: it counts as PENDING again and leaves the COMPLETED_AT order.
    retry_by_hand(world, world.runs["b"])
    assert (_list(key, "status=FAILED")["total"], _list(key, "status=PENDING")["total"]) == (2, 3)
    assert "b" not in _names(world, _list(key, "sort_by=COMPLETED_AT&limit=6"))
    # Deleting a run and a whole definition takes their counts away.
    assert call_api("DELETE", f"/v1/workflow-runs/{world.runs['a'].id}", api_key=key).status == 204
    assert (_list(key)["total"], _list(key, "status=COMPLETED")["total"], _list(key, "mine=true")["total"]) == (
        10, 4, 4)
    for name in "ei":
        end(run_store.get(world.runs[name].id) or world.runs[name], RunStatus.FAILED)
    assert call_api("DELETE", f"/v1/workflow-definitions/{world.member_definition['id']}", api_key=key).status == 204
    assert _names(world, _list(key)) == "jhfdb"
    assert (_list(key)["total"], _list(key, f"invoked_by={world.admin.user_id}")["total"]) == (5, 2)
    assert _list(world.member.api_key)["total"] == 0


def test_a_user_mine_and_status_counts(world: World) -> None:
    counted = _list(world.member.api_key, "status=FAILED")
    assert (_names(world, counted), counted["total"]) == ("g", 1)


@pytest.mark.parametrize("query", [
    "status=DONE", "state=", "sort_by=NAME", "sort_dir=UP", "limit=0", "limit=101", "offset=-1",
    "created_after=yesterday", "invoked_by=not-a-uuid", "definition_id=42", "trigger=CRON",
    "created_after=2026-11-21T00:00:00Z&created_before=2026-11-20T00:00:00Z",
    "updated_after=2026-11-21T00:00:00Z&updated_before=2026-11-20T00:00:00Z",
    "status=" + "\U0001f600" * 300,
])
def test_bad_parameters_are_422(tenant: CreatedTenant, query: str) -> None:
    response = call_api("GET", f"/v1/workflow-runs?{query}", api_key=tenant.api_key)
    assert response.status == 422, (query, response.body)
    assert isinstance(response.body["detail"], list) and response.body["detail"][0]["loc"][0] == "query"


def test_listing_needs_an_api_key(tenant: CreatedTenant) -> None:
    assert call_api("GET", "/v1/workflow-runs").status == 401


def test_a_filtered_listing_that_would_read_too_much_says_how_to_narrow_it(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "FILTERED_READ_LIMIT", 5)
    response = call_api("GET", "/v1/workflow-runs?trigger=SCHEDULE", api_key=world.tenant.api_key)
    assert response.status == 422
    assert "created_after" in response.body["detail"][0]["msg"]
    # A served filter is not bounded that way: its own index reads one page.
    assert _list(world.tenant.api_key, "status=COMPLETED")["total"] == 4


def test_runs_of_a_stack_without_run_indexes_list_by_definition_only(world: World,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUN_INDEX_COUNT", "0")
    assert call_api("GET", "/v1/workflow-runs", api_key=world.tenant.api_key).status == 503
    assert _list(world.tenant.api_key, f"definition_id={world.owner_definition['id']}")["total"] == 6


def test_the_run_item_carries_its_index_attributes(world: World) -> None:
    item = aws.table(run_store.settings().table_name).get_item(Key=run_store.run_key(world.runs["b"].id))["Item"]
    assert item["rix_pk"] == f"RUNS#{world.tenant.tenant_id}"
    assert item["rix_status"].startswith("FAILED#") and "rix_completed" in item
