"""Run summaries and admin analytics, from the aggregates the run writes keep (the `world` fixture's runs)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest

from ksflow import clock
from ksflow.identity.models import CreatedTenant
from ksflow.workflows import run_store
from ksflow.workflows.models import RunStatus
from tests.conftest import call_api
from tests.unit.seeded_runs import BASE, World, dispatch, end, retry_by_hand, write

WINDOW = f"since={clock.iso(BASE - timedelta(hours=1))}&until={clock.iso(BASE + timedelta(hours=1))}"


def _get(path: str, api_key: str, query: str = WINDOW) -> dict[str, Any]:
    response = call_api("GET", f"{path}?{query}", api_key=api_key)
    assert response.status == 200, (path, query, response.body)
    return dict(response.body)


def _summary(api_key: str, query: str = WINDOW, path: str = "/v1/workflow-runs/summary") -> dict[str, Any]:
    return _get(path, api_key, query)


def test_the_tenant_summary_counts_every_run_of_the_window(world: World) -> None:
    for path in ("/v1/workflow-runs/summary", "/v1/admin/workflows/summary"):
        summary = _summary(world.tenant.api_key, path=path)
        assert summary["total"] == 11
        assert summary["counts_by_state"] == {"PENDING": 2, "RUNNING": 2, "COMPLETED": 4, "FAILED": 3}
        assert summary["failure_rate"] == pytest.approx(3 / 7)
        assert summary["adoption"] == {"runs": 11, "active_definitions": 2, "distinct_triggerers": 3}
        assert summary["duration_p50_seconds"] > 0 and summary["duration_p95_seconds"] >= summary[
            "duration_p50_seconds"]
        assert (summary["pending_approval_count"], summary["oldest_pending_age_seconds"]) == (0, None)
        assert summary["window_start"].startswith("2026-11-20T11:00:00")


def test_a_user_summary_covers_its_own_definitions(world: World) -> None:
    summary = _summary(world.member.api_key)
    assert summary["counts_by_state"] == {"PENDING": 1, "RUNNING": 1, "COMPLETED": 2, "FAILED": 1}
    assert summary["adoption"] == {"runs": 5, "active_definitions": 1, "distinct_triggerers": 3}
    scoped = _summary(world.tenant.api_key, f"{WINDOW}&definition_id={world.owner_definition['id']}")
    assert scoped["counts_by_state"] == {"PENDING": 1, "RUNNING": 1, "COMPLETED": 2, "FAILED": 2}
    assert scoped["adoption"]["distinct_triggerers"] == 2
    hidden = call_api("GET", f"/v1/workflow-runs/summary?definition_id={world.owner_definition['id']}",
                      api_key=world.member.api_key)
    assert hidden.status == 404


def test_windows_select_by_creation_and_default_to_the_last_seven_days(world: World) -> None:
    # The world's runs are ten days old: the default window holds none, and a window after them neither.
    empty = _summary(world.tenant.api_key, "")
    assert (empty["total"], empty["failure_rate"], empty["duration_p50_seconds"]) == (0, None, None)
    assert empty["window_end"] is None
    later = _summary(world.tenant.api_key, f"since={clock.iso(BASE + timedelta(minutes=30))}")
    assert later["total"] == 0
    # A window resolves to whole 15-minute buckets of creation time.
    edge = _summary(world.tenant.api_key, f"since={clock.iso(BASE + timedelta(minutes=14))}"
                                          f"&until={clock.iso(BASE + timedelta(minutes=14))}")
    assert edge["total"] == 11


def test_aggregates_follow_status_changes_retries_and_deletes(world: World) -> None:
    end(world.runs["d"], RunStatus.COMPLETED)
    retry_by_hand(world, world.runs["b"])
    assert call_api("DELETE", f"/v1/workflow-runs/{world.runs['a'].id}", api_key=world.tenant.api_key).status == 204
    summary = _summary(world.tenant.api_key)
    assert summary["counts_by_state"] == {"PENDING": 3, "RUNNING": 1, "COMPLETED": 4, "FAILED": 2}
    assert summary["total"] == 10
    for name in "ei":
        end(run_store.get(world.runs[name].id) or world.runs[name], RunStatus.FAILED)
    assert call_api("DELETE", f"/v1/workflow-definitions/{world.member_definition['id']}",
                    api_key=world.tenant.api_key).status == 204
    after = _summary(world.tenant.api_key)
    assert after["counts_by_state"] == {"PENDING": 2, "RUNNING": 0, "COMPLETED": 2, "FAILED": 1}
    assert after["adoption"] == {"runs": 5, "active_definitions": 1, "distinct_triggerers": 2}
    assert _get("/v1/admin/workflows/leaderboard", world.tenant.api_key)["top_users"][0]["count"] == 3


def test_percentiles_are_nearest_rank_within_five_percent(tenant: CreatedTenant, world: World,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # 40 runs of one definition, created in the window, lasting 1.5 s to 600 s.
    durations = [1.5 * 1.17 ** i for i in range(40)]
    start = BASE + timedelta(days=1)
    for index, seconds in enumerate(durations):
        run = dispatch(write(world.owner_definition, tenant.tenant_id, tenant.user_id, 24 * 60 + index))
        finish = run.started_at + timedelta(seconds=seconds)
        with monkeypatch.context() as frozen:
            frozen.setattr(clock, "now", lambda finish=finish: finish)
            end(run, RunStatus.COMPLETED)
    window = f"since={clock.iso(start)}&until={clock.iso(start + timedelta(hours=1))}"
    summary = _summary(tenant.api_key, window)
    ranked = sorted(durations)
    for p, field in ((50, "duration_p50_seconds"), (95, "duration_p95_seconds")):
        exact = ranked[math.ceil(p / 100 * len(ranked)) - 1]
        assert abs(summary[field] - exact) / exact <= 0.05, (p, summary[field], exact)


def test_admin_analytics_are_for_owners_and_admins(world: World) -> None:
    for path in ("summary", "timeseries", "by-hour", "leaderboard"):
        assert call_api("GET", f"/v1/admin/workflows/{path}", api_key=world.member.api_key).status == 403
        assert call_api("GET", f"/v1/admin/workflows/{path}", api_key=world.admin.api_key).status == 200
        assert call_api("GET", f"/v1/admin/workflows/{path}").status == 401


@pytest.mark.parametrize(("zone", "hour"), [("UTC", 12), ("Asia/Kolkata", 17), ("Asia/Kathmandu", 17),
                                             ("America/New_York", 7), ("Pacific/Chatham", 1)])
def test_by_hour_and_timeseries_in_a_time_zone(world: World, zone: str, hour: int) -> None:
    hours = _get("/v1/admin/workflows/by-hour", world.tenant.api_key, f"{WINDOW}&timezone={zone}")
    assert hours["timezone"] == zone
    assert hours["counts_by_hour"] == [11 if h == hour else 0 for h in range(24)]
    series = _get("/v1/admin/workflows/timeseries", world.tenant.api_key, f"{WINDOW}&timezone={zone}&bucket=hour")
    assert (series["timezone"], series["bucket"]) == (zone, "hour")
    counts = {point["bucket_start"]: point["count"] for point in series["points"]}
    assert sum(counts.values()) == 11 and max(counts.values()) == 11
    busiest = datetime.fromisoformat(max(counts, key=lambda k: counts[k]))
    assert (busiest.hour, busiest.minute) == (hour, 0)
    assert all(datetime.fromisoformat(k).utcoffset() == busiest.utcoffset() for k in counts)


def test_a_daily_series_shows_empty_days(world: World) -> None:
    window = f"since={clock.iso(BASE - timedelta(days=2))}&until={clock.iso(BASE + timedelta(days=1))}"
    series = _get("/v1/admin/workflows/timeseries", world.tenant.api_key, f"{window}&bucket=day&timezone=Asia/Kolkata")
    assert [p["count"] for p in series["points"]] == [0, 0, 11, 0]
    assert [p["counts_by_state"] for p in series["points"]][1:3] == [
        {"PENDING": 0, "RUNNING": 0, "COMPLETED": 0, "FAILED": 0},
        {"PENDING": 2, "RUNNING": 2, "COMPLETED": 4, "FAILED": 3}]
    assert series["points"][2]["bucket_start"].startswith("2026-11-20T00:00:00+05:30")


def test_the_leaderboard_ranks_definitions_and_invokers(world: World) -> None:
    board = _get("/v1/admin/workflows/leaderboard", world.tenant.api_key)
    assert [(e["id"], e["name"], e["count"]) for e in board["top_workflows"]] == [
        (world.owner_definition["id"], world.owner_definition["name"], 6),
        (world.member_definition["id"], "Member's", 5)]
    assert board["top_users"][0] == {"id": world.tenant.user_id, "name": "owner@acme.test", "count": 5}
    assert sorted((e["name"], e["count"]) for e in board["top_users"][1:]) == [("admin@acme.test", 3),
                                                                               ("member@acme.test", 3)]
    top_one = _get("/v1/admin/workflows/leaderboard", world.tenant.api_key, f"{WINDOW}&limit=1")
    assert (len(top_one["top_workflows"]), len(top_one["top_users"])) == (1, 1)


@pytest.mark.parametrize("query", [
    "timezone=Mars/Olympus", "timezone=", "bucket=fortnight", "since=2026-11-21T00:00:00Z&until=2026-11-20T00:00:00Z",
    "since=2024-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "since=yesterday", "definition_id=7",
    "timezone=" + "\U0001f600" * 65,
    # The ends of time: a local month or week around them is no date Python can hold.
    "since=9999-12-31T00:00:00Z&until=9999-12-31T23:59:59Z&bucket=month",
    "since=0001-01-01T00:00:00Z&until=0001-01-02T00:00:00Z&bucket=week&timezone=America/New_York",
])
def test_bad_analytics_parameters_are_422(tenant: CreatedTenant, query: str) -> None:
    response = call_api("GET", f"/v1/admin/workflows/timeseries?{query}", api_key=tenant.api_key)
    assert response.status == 422, (query, response.body)
    assert response.body["detail"][0]["loc"][0] == "query"
    assert call_api("GET", "/v1/admin/workflows/leaderboard?limit=51", api_key=tenant.api_key).status == 422


def test_other_tenants_aggregates_stay_apart(world: World, other_tenant: CreatedTenant) -> None:
    assert _summary(other_tenant.api_key)["total"] == 0
    board = _get("/v1/admin/workflows/leaderboard", other_tenant.api_key)
    assert (board["top_workflows"], board["top_users"]) == ([], [])
    foreign = call_api("GET", f"/v1/admin/workflows/summary?definition_id={world.owner_definition['id']}",
                       api_key=other_tenant.api_key)
    assert foreign.status == 404


def test_the_openapi_document_lists_the_analytics(tenant: CreatedTenant) -> None:
    paths = call_api("GET", "/openapi.json").body["paths"]
    for path in ("/v1/workflow-runs", "/v1/workflow-runs/summary", "/v1/admin/workflows/summary",
                 "/v1/admin/workflows/timeseries", "/v1/admin/workflows/by-hour", "/v1/admin/workflows/leaderboard"):
        assert "get" in paths[path], path
    names = {p["name"] for p in paths["/v1/workflow-runs"]["get"]["parameters"]}
    assert {"status", "state", "mine", "definition_id", "invoked_by", "owner_id", "trigger", "sort_by", "sort_dir",
            "created_after", "created_before", "updated_after", "updated_before", "limit", "offset"} <= names

