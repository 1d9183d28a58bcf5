"""Deleting a folder or document and everything under it.

A delete removes path parts, pointers, name claims, listing entries, grants, ingestion records,
chunks and every stored file version. It is refused while a PENDING or RUNNING workflow run has
a folder of the subtree as an output, since the runner is writing there; outputs above the
subtree are left to the user.

The request first detaches the part (`store.detach`): in one transaction it is marked
`deleting`, leaves its parent's listings and counts, and a second delete of it is 404. Then
it removes what it can within a budget (`Budget.inline`), deepest parts first, and hands the
rest to the deletion state machine, whose task removes a bounded batch per invocation until
the part itself is gone. Meanwhile the part and everything under it reads as absent, and
creates under it are 404 (see `store.fence`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ksflow.config import settings
from ksflow.deletion import executions
from ksflow.errors import Conflict
from ksflow.ingestion import service as ingestion
from ksflow.knowledge import permissions, store
from ksflow.knowledge.models import PartType, PathPart
from ksflow.observability import logger
from ksflow.workflows import runs

# Children read (and removed) per step of the walk: one query and one batched read.
BATCH = 100


@dataclass
class Budget:
    """How much one request or task invocation removes before it stops: parts and seconds."""

    parts: int
    seconds: float
    started: float = field(default_factory=time.monotonic)
    removed: int = 0

    @classmethod
    def inline(cls) -> Budget:
        return cls(settings().delete_inline_parts, settings().delete_inline_seconds)

    @classmethod
    def step(cls) -> Budget:
        return cls(settings().delete_step_parts, settings().delete_step_seconds)

    def spent(self) -> bool:
        return self.removed >= self.parts or time.monotonic() - self.started >= self.seconds


def _refuse_while_runs_write_to(part: PathPart) -> None:
    """Checked before anything changes, so a refused delete leaves the subtree as it was.

    Run outputs are always folders, so only the subtree's folders are walked (not its documents' versions).
    """
    folders = store.descendants(part, kinds={PartType.FOLDER}) if part.part_type == PartType.FOLDER else []
    blocking = runs.open_runs_writing_to(part.tenant_id, {part.path_part_id, *(f.path_part_id for f in folders)})
    if blocking:
        raise Conflict(f"{len(blocking)} workflow run(s) still PENDING or RUNNING write to {part.materialized_path}"
                       f" or below (run {blocking[0].id}); wait for them to end or cancel them")


def delete(part: PathPart) -> None:
    """Detach the part at once, remove what fits in the request's budget, leave the rest to the state machine.

    Whatever the inline removal hits, the state machine takes over: every step of it can be done again.
    """
    _refuse_while_runs_write_to(part)
    store.detach(part)
    try:
        done = clear(part, Budget.inline())
    except Exception:  # the background deletion retries whatever failed here
        logger.exception("Inline delete failed; the background deletion takes over",
                         extra={"path_part_id": part.path_part_id})
        done = False
    if not done:
        executions.start(part)


def _remove(parts: Sequence[PathPart], budget: Budget) -> None:
    """Data first, path parts last: a removal cut short is found by its name claims and finished again."""
    if not parts:
        return
    tenant_id = parts[0].tenant_id
    versions = [p.metadata_obj_id for p in parts if p.part_type == PartType.DOCUMENT_VERSION]
    if versions:
        ingestion.discard(tenant_id, versions)
    permissions.delete_for_path_parts(tenant_id, {p.path_part_id for p in parts})
    store.remove(parts)
    budget.removed += len(parts)


def clear(part: PathPart, budget: Budget) -> bool:
    """Remove everything under the part, deepest first, then the part; False if the budget ran out first.

    Each level is fenced before its children are read, so the children only ever shrink.
    """
    while not budget.spent():
        claims = store.child_claims(part.tenant_id, part.path_part_id, BATCH)
        if not claims:
            _remove([part], budget)
            return True
        kids = store.get_path_parts(part.tenant_id, [c["path_part_id"] for c in claims], deleting=True)
        store.drop_claim_items([c for c in claims if c["path_part_id"] not in kids])
        store.fence(kids.values())
        for kid in store.containers(kids.values()):
            if not clear(kid, budget):
                return False
        _remove([k for k in kids.values() if k.part_type == PartType.DOCUMENT_VERSION], budget)
    return False


def step(tenant_id: str, path_part_id: str) -> bool:
    """One invocation's share of a background deletion; True once the deleted part is gone."""
    part = store.get_path_parts(tenant_id, [path_part_id], deleting=True).get(path_part_id)
    return part is None or clear(part, Budget.step())
