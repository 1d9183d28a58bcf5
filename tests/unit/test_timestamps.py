"""Timestamps sort as the times they stand for, whatever their microseconds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ksapi.models import PaginatedResponseWorkflowRunResponse

from ksflow import clock
from ksflow.identity.models import CreatedTenant
from tests.conftest import Runner, call_api
from tests.unit.conftest import callback


def test_iso_has_one_width_and_reads_back() -> None:
    whole_second = datetime(2024, 10, 15, 9, 30, 0, tzinfo=UTC)
    for microseconds in (0, 1, 500000):
        moment = whole_second + timedelta(microseconds=microseconds)
        text = clock.iso(moment)
        assert len(text) == len("2024-10-15T09:30:00.000000Z") and text.endswith("Z"), text
        assert clock.parse(text) == moment
    assert clock.iso(whole_second) < clock.iso(whole_second + timedelta(microseconds=1))


def test_runs_list_newest_first_with_and_without_microseconds(monkeypatch: pytest.MonkeyPatch, tenant: CreatedTenant,
                                                              runner_factory: Callable[..., Runner],
                                                              create_definition: Callable[..., dict[str, Any]]) -> None:
    definition = create_definition(runner_factory(delay=3600).url)
    second = datetime.now(UTC).replace(microsecond=0)
    # A run at a whole second, one half a second later, one at the next whole second.
    created: list[str] = []
    real_now = clock.now
    for moment in (second, second + timedelta(microseconds=500000), second + timedelta(seconds=1)):
        monkeypatch.setattr(clock, "now", lambda moment=moment: moment)
        response = call_api("POST", f"/v1/workflow-definitions/{definition['id']}/invoke", {}, tenant.api_key)
        assert response.status == 202, response.body
        created.append(response.body["id"])
    monkeypatch.setattr(clock, "now", real_now)  # not undo(): that would also drop the fixtures' environment
    try:
        listed = call_api("GET", f"/v1/workflow-definitions/{definition['id']}/runs", api_key=tenant.api_key)
        assert listed.status == 200, listed.body
        page = PaginatedResponseWorkflowRunResponse.from_dict(listed.body)
        assert [str(run.id) for run in page.items] == created[::-1]
        assert [run.created_at for run in page.items] == sorted((run.created_at for run in page.items), reverse=True)
        newest = call_api("GET", f"/v1/workflow-definitions/{definition['id']}/runs?limit=1", api_key=tenant.api_key)
        assert [run["id"] for run in newest.body["items"]] == [created[-1]]
    finally:
        for run_id in created:
            callback(run_id, {"status": "COMPLETED"})
