"""Runs written before the run indexes existed: indexed and counted once, by their next change or the backfill."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

from ksflow import aws, clock
from ksflow.runindex import backfill
from ksflow.workflows import run_store
from ksflow.workflows.models import EndedBy, RunStatus, WorkflowRun
from tests.conftest import call_api
from tests.unit.seeded_runs import BASE, World, dispatch, end, write

WINDOW = f"since={clock.iso(BASE - timedelta(hours=1))}&until={clock.iso(BASE + timedelta(hours=1))}"


def _legacy(world: World, minute: int, status: RunStatus) -> WorkflowRun:
    """A run as the service wrote it before: no index attributes, no counts, no aggregates."""
    run = write(world.owner_definition, world.tenant.tenant_id, world.tenant.user_id, minute)
    table = aws.table(os.environ["TABLE_NAME"])
    # Take away what the write added for the indexes, as if it had never been there.
    run_store.delete(run)
    legacy = run.model_copy(update={"status": status, "rix_pk": None,
                                    "completed_at": clock.now() if status.terminal else None})
    table.put_item(Item={k: v for k, v in run_store._run_item(legacy).items() if not k.startswith("rix_")})
    table.update_item(Key=run_store.definition_key(world.tenant.tenant_id, world.owner_definition["id"]),
                      UpdateExpression="ADD run_count :one", ExpressionAttributeValues={":one": 1})
    stored = run_store.get(run.id)
    assert stored is not None and stored.rix_pk is None
    return stored


def _totals(world: World) -> tuple[int, dict[str, int]]:
    listed = call_api("GET", "/v1/workflow-runs?limit=1", api_key=world.tenant.api_key).body["total"]
    summary = call_api("GET", f"/v1/workflow-runs/summary?{WINDOW}", api_key=world.tenant.api_key).body
    assert summary["total"] == listed, (summary, listed)
    return listed, summary["counts_by_state"]


def test_legacy_runs_are_counted_once_by_a_change_or_the_backfill(world: World) -> None:
    table = aws.table(os.environ["TABLE_NAME"])
    finished = _legacy(world, 20, RunStatus.COMPLETED)
    running = _legacy(world, 21, RunStatus.RUNNING)
    assert _totals(world) == (11, {"PENDING": 2, "RUNNING": 2, "COMPLETED": 4, "FAILED": 3})

    end(running, RunStatus.FAILED)  # its change indexes and counts it in its new status
    assert _totals(world) == (12, {"PENDING": 2, "RUNNING": 2, "COMPLETED": 4, "FAILED": 4})

    stale = run_store.get(finished.id)
    assert backfill.backfill(table) == 1
    assert _totals(world) == (13, {"PENDING": 2, "RUNNING": 2, "COMPLETED": 5, "FAILED": 4})
    assert backfill.backfill(table) == 0
    assert stale is not None and run_store.index_legacy(stale) is False  # read before, indexed since
    assert _totals(world)[0] == 13
    listed: list[dict[str, Any]] = call_api("GET", "/v1/workflow-runs?status=COMPLETED&limit=100",
                                            api_key=world.tenant.api_key).body["items"]
    assert finished.id in {item["id"] for item in listed}

    # Deleting a legacy run never counted takes nothing away.
    unindexed = _legacy(world, 22, RunStatus.FAILED)
    assert call_api("DELETE", f"/v1/workflow-runs/{unindexed.id}", api_key=world.tenant.api_key).status == 204
    assert _totals(world)[0] == 13


def test_the_backfill_follows_a_status_change_it_races(world: World) -> None:
    legacy = _legacy(world, 23, RunStatus.RUNNING)
    moved = run_store.end_attempt(legacy, run_store.Ending(status=RunStatus.COMPLETED, error=None,
                                                           ended_by=EndedBy.CALLBACK))
    assert moved is not None
    # The backfill read the run before that change: it finds the run indexed and counts nothing.
    assert run_store.index_legacy(legacy) is False
    assert _totals(world) == (12, {"PENDING": 2, "RUNNING": 2, "COMPLETED": 5, "FAILED": 3})


def test_the_admin_command_indexes_a_deployed_table(world: World, capsys: Any, monkeypatch: Any) -> None:
    from ksflow import cli

    _legacy(world, 24, RunStatus.COMPLETED)
    dispatch(write(world.owner_definition, world.tenant.tenant_id, world.tenant.user_id, 25))
    cli.main(["admin", "--table-name", os.environ["TABLE_NAME"], "index-runs"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"indexed_runs": 1}
    assert _totals(world)[0] == 13
