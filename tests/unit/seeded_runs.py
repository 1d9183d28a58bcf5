"""Runs written by the run store itself (as invoke and the state machine's tasks write them), without
executions, so a test can place them in time; their status moves by the same writers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ksflow import clock
from ksflow.identity import store as identity
from ksflow.identity.models import CreatedTenant, CreatedUser, Role
from ksflow.knowledge.models import PartType
from ksflow.lifecycle import events
from ksflow.lifecycle.events import RunEventType
from ksflow.workflows import definitions, run_store
from ksflow.workflows.models import EndedBy, PathSnapshot, RunSnapshot, RunStatus, RunTrigger, WorkflowRun

BASE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass
class World:
    tenant: CreatedTenant
    member: CreatedUser
    admin: CreatedUser
    owner_definition: dict[str, Any]
    member_definition: dict[str, Any]
    runs: dict[str, WorkflowRun]


def write(definition: dict[str, Any], tenant_id: str, invoker: str, minute: int,
           trigger: RunTrigger = RunTrigger.MANUAL) -> WorkflowRun:
    stored = definitions.get(tenant_id, definition["id"])
    assert stored is not None and stored.runner_url and stored.secret_ciphertext
    moment = BASE + timedelta(minutes=minute)
    run = WorkflowRun(tenant_id=tenant_id, id=str(uuid.uuid4()), workflow_definition_id=stored.id,
                      definition_owner_id=stored.created_by, user_id=invoker, status=RunStatus.PENDING,
                      started_at=moment + timedelta(seconds=30 - minute % 7), deadline=moment + timedelta(hours=1),
                      runner_url=stored.runner_url, secret_ciphertext=stored.secret_ciphertext, trigger=trigger,
                      created_at=moment, updated_at=moment, run_snapshot=RunSnapshot(
                          workflow_definition_id=stored.id, workflow_name=stored.name, user_id=invoker,
                          max_run_duration_seconds=3600, sources=[], instructions=[], outputs=[],
                          template=PathSnapshot(path_part_id=uuid.uuid4(), materialized_path="/template",
                                                part_type=PartType.DOCUMENT)))
    return run_store.insert(run)


def dispatch(run: WorkflowRun) -> WorkflowRun:
    attempt = events.new(RunEventType.DISPATCH_ATTEMPT, run.attempt, {"status": 202, "duration_ms": 1})
    assert run_store.record_dispatch(run, attempt, accepted=True)
    moved = run_store.get(run.id)
    assert moved is not None and moved.status == RunStatus.RUNNING
    return moved


def end(run: WorkflowRun, status: RunStatus) -> WorkflowRun:
    ending = run_store.Ending(status=status, error="broke" if status == RunStatus.FAILED else None,
                              ended_by=EndedBy.CALLBACK)
    ended = run_store.end_attempt(run, ending)
    assert ended is not None
    return ended


@pytest.fixture
def world(tenant: CreatedTenant, knowledge: dict[str, str], grant: Callable[[str, str, str], None],
          create_definition: Callable[..., dict[str, Any]]) -> World:
    """Two definitions (the OWNER's and a USER's), an ADMIN, and eleven runs in a known order and state.

    minute: run (definition, invoker, final status)
    0 a (owner, owner, COMPLETED)   1 b (owner, admin, FAILED)    2 c (member, member, COMPLETED)
    3 d (owner, owner, RUNNING)     4 e (member, owner, PENDING)  5 f (owner, owner, FAILED, SCHEDULE)
    6 g (member, member, FAILED)    7 h (owner, admin, COMPLETED) 8 i (member, member, RUNNING)
    9 j (owner, owner, PENDING)     10 k (member, admin, COMPLETED)
    Completion order (completed_at): c, a, h, b, g, k, f.
    """
    member = identity.create_user(tenant.tenant_id, "member@acme.test", Role.USER)
    admin = identity.create_user(tenant.tenant_id, "admin@acme.test", Role.ADMIN)
    grant(member.user_id, tenant.root_path_part_id, "READ_WRITE")
    owner_definition = create_definition()
    member_definition = create_definition(api_key=member.api_key, name="Member's")
    plan = {"a": (owner_definition, tenant.user_id), "b": (owner_definition, admin.user_id),
            "c": (member_definition, member.user_id), "d": (owner_definition, tenant.user_id),
            "e": (member_definition, tenant.user_id), "f": (owner_definition, tenant.user_id),
            "g": (member_definition, member.user_id), "h": (owner_definition, admin.user_id),
            "i": (member_definition, member.user_id), "j": (owner_definition, tenant.user_id),
            "k": (member_definition, admin.user_id)}
    runs = {name: write(definition, tenant.tenant_id, invoker, minute,
                         RunTrigger.SCHEDULE if name == "f" else RunTrigger.MANUAL)
            for minute, (name, (definition, invoker)) in enumerate(plan.items())}
    for name in "abcdfghik":
        runs[name] = dispatch(runs[name])
    for name, status in (("c", RunStatus.COMPLETED), ("a", RunStatus.COMPLETED), ("h", RunStatus.COMPLETED),
                         ("b", RunStatus.FAILED), ("g", RunStatus.FAILED), ("k", RunStatus.COMPLETED),
                         ("f", RunStatus.FAILED)):
        runs[name] = end(runs[name], status)
    return World(tenant, member, admin, owner_definition, member_definition, runs)


def retry_by_hand(world: World, run: WorkflowRun) -> None:
    """A FAILED run reopened at attempt 2 by the tenant's OWNER, as `POST .../retry` writes it."""
    rerun = run_store.Rerun(attempt=2, execution=f"run-{run.id}-2", started_at=clock.now(),
                            deadline=clock.now() + timedelta(hours=1), runner_url=run.runner_url,
                            secret_ciphertext=run.secret_ciphertext, retry_policy=None,
                            heartbeat_timeout_seconds=None, by=world.tenant.user_id)
    assert run_store.start_rerun(run, rerun) is not None
