"""Deleting a folder while open runs write to it: found from the tenant's open runs, never from its history."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from ksflow import aws, clock
from ksflow.identity.models import CreatedTenant
from ksflow.knowledge.models import PartType
from ksflow.workflows import definitions, run_store, snapshots
from ksflow.workflows.models import PathSnapshot, RunSnapshot, RunStatus, WorkflowRun
from tests.conftest import call_api, definition_body
from tests.unit.conftest import PUBLIC_RUNNER_URL
from tests.unit.seeded_runs import dispatch, end
from tests.unit.test_api_knowledge import create_document, create_folder


def _open_run(tenant_id: str, definition_id: str, output_ids: list[str]) -> WorkflowRun:
    """A PENDING run writing to `output_ids`, stored as invoke stores it (no execution is started)."""
    stored = definitions.get(tenant_id, definition_id)
    assert stored is not None and stored.runner_url and stored.secret_ciphertext
    now = clock.now()
    outputs = [PathSnapshot(path_part_id=uuid.UUID(pp), materialized_path=f"/out/{n}", part_type=PartType.FOLDER)
               for n, pp in enumerate(output_ids)]
    return run_store.insert(WorkflowRun(
        tenant_id=tenant_id, id=str(uuid.uuid4()), workflow_definition_id=stored.id,
        definition_owner_id=stored.created_by, user_id=stored.created_by, status=RunStatus.PENDING, started_at=now,
        deadline=now + timedelta(hours=1), runner_url=stored.runner_url, secret_ciphertext=stored.secret_ciphertext,
        created_at=now, updated_at=now, run_snapshot=RunSnapshot(
            workflow_definition_id=stored.id, workflow_name=stored.name, user_id=stored.created_by,
            max_run_duration_seconds=3600, sources=[], instructions=[], outputs=outputs)))


@pytest.fixture
def folders(tenant: CreatedTenant) -> dict[str, dict[str, Any]]:
    """/reports with /reports/2026 under it, and /other beside it."""
    reports = create_folder(tenant.root_path_part_id, "reports", tenant.api_key)
    year = create_folder(reports["path_part_id"], "2026", tenant.api_key)
    other = create_folder(tenant.root_path_part_id, "other", tenant.api_key)
    return {"reports": reports, "year": year, "other": other}


def _delete(folder: dict[str, Any], api_key: str) -> Any:
    return call_api("DELETE", f"/v1/folders/{folder['id']}", api_key=api_key)


def test_a_run_writing_to_a_subfolder_blocks_its_ancestors_delete_until_it_ends(
        tenant: CreatedTenant, folders: dict[str, dict[str, Any]], create_definition: Callable[..., dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    definition = create_definition()
    run = _open_run(tenant.tenant_id, definition["id"], [folders["year"]["path_part_id"]])
    with monkeypatch.context() as m:
        # The open runs are found without walking the tenant's definitions.
        m.setattr(definitions, "list_for_tenant", lambda *_: pytest.fail("definitions read"))
        refused = _delete(folders["reports"], tenant.api_key)
        assert refused.status == 409 and run.id in refused.body["detail"], refused.body
        assert _delete(folders["other"], tenant.api_key).status == 204
        running = dispatch(run)
        assert _delete(folders["reports"], tenant.api_key).status == 409  # RUNNING blocks as PENDING does
        end(running, RunStatus.COMPLETED)
        assert _delete(folders["reports"], tenant.api_key).status == 204


def test_a_finished_run_never_blocks(tenant: CreatedTenant, folders: dict[str, dict[str, Any]],
                                     create_definition: Callable[..., dict[str, Any]]) -> None:
    definition = create_definition()
    for status in (RunStatus.COMPLETED, RunStatus.FAILED):
        end(dispatch(_open_run(tenant.tenant_id, definition["id"], [folders["year"]["path_part_id"]])), status)
    assert _delete(folders["reports"], tenant.api_key).status == 204


def test_another_tenants_runs_never_block(tenant: CreatedTenant, other_tenant: CreatedTenant,
                                          folders: dict[str, dict[str, Any]]) -> None:
    root = other_tenant.root_path_part_id
    instructions = create_document(root, "instructions.md", other_tenant.api_key)["path_part_id"]
    theirs = call_api("POST", "/v1/workflow-definitions", definition_body(
        {"source": root, "instructions": instructions, "output": root, "template": instructions},
        PUBLIC_RUNNER_URL), other_tenant.api_key)
    assert theirs.status == 201, theirs.body
    # Even a run of theirs naming this tenant's folder as an output (ids are not secrets) changes nothing here.
    _open_run(other_tenant.tenant_id, theirs.body["id"], [folders["year"]["path_part_id"]])
    assert _delete(folders["reports"], tenant.api_key).status == 204


def test_a_snapshot_kept_in_s3_is_not_read_and_a_legacy_one_still_blocks(
        tenant: CreatedTenant, folders: dict[str, dict[str, Any]], create_definition: Callable[..., dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    definition = create_definition()
    with monkeypatch.context() as m:
        m.setattr(snapshots, "INLINE_LIMIT_BYTES", 10)
        current = _open_run(tenant.tenant_id, definition["id"], [folders["year"]["path_part_id"]])
        legacy = _open_run(tenant.tenant_id, definition["id"], [folders["other"]["path_part_id"]])
    assert current.snapshot_s3_key and legacy.snapshot_s3_key
    table = aws.table(os.environ["TABLE_NAME"])
    # Written before its item carried its output ids.
    table.update_item(Key=run_store.run_key(legacy.id), UpdateExpression=f"REMOVE {run_store.OUTPUT_IDS}")
    read: list[str] = []
    original = snapshots.read

    def reading(key: str) -> RunSnapshot:
        read.append(key)
        return original(key)

    with monkeypatch.context() as m:
        m.setattr(snapshots, "read", reading)
        refused = _delete(folders["reports"], tenant.api_key)
        assert refused.status == 409 and current.id in refused.body["detail"]
        assert read == [legacy.snapshot_s3_key]  # only the legacy run's snapshot is read
        refused = _delete(folders["other"], tenant.api_key)
        assert refused.status == 409 and legacy.id in refused.body["detail"]


def test_without_the_status_index_every_definitions_open_runs_are_read(
        tenant: CreatedTenant, folders: dict[str, dict[str, Any]], create_definition: Callable[..., dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    run = _open_run(tenant.tenant_id, create_definition()["id"], [folders["year"]["path_part_id"]])
    with monkeypatch.context() as m:
        m.setenv("RUN_INDEX_COUNT", "1")  # `runs-by-status` is the second index deployed
        assert run_store.list_open_for_tenant(tenant.tenant_id) is None
        refused = _delete(folders["reports"], tenant.api_key)
        assert refused.status == 409 and run.id in refused.body["detail"]
