"""Listing a part's children and deleting whole subtrees.

A part that a principal can read has only readable descendants (grants cover subtrees), so
listings check the parent once. Deleting a folder or document removes everything under it:
path parts, pointers, name claims, grants, ingestion records, chunks and every stored file
version. It is refused while a PENDING or RUNNING workflow run has a part of the subtree as
an output, since the runner is writing there; outputs above the subtree are left to the user.
Before it removes anything, a delete fences the subtree (`store.fence_subtree`): creates under
it are 404 from then on, and whatever was created before is found and deleted with it.
"""

from __future__ import annotations

from enum import StrEnum

from ksflow.errors import Conflict
from ksflow.ingestion import service as ingestion
from ksflow.knowledge import permissions, store
from ksflow.knowledge.models import PartType, PathPart
from ksflow.workflows import runs


class SortOrder(StrEnum):
    """The SDK's PathOrder. ksflow keeps no manual order, so LOGICAL is NAME."""

    LOGICAL = "LOGICAL"
    NAME = "NAME"
    UPDATED_AT = "UPDATED_AT"
    CREATED_AT = "CREATED_AT"


def sort(parts: list[PathPart], order: SortOrder) -> list[PathPart]:
    """NAME orders by materialized path, so deeper listings show each parent before its children."""
    if order == SortOrder.UPDATED_AT:
        return sorted(parts, key=lambda p: (p.updated_at, p.path_part_id), reverse=True)
    if order == SortOrder.CREATED_AT:
        return sorted(parts, key=lambda p: (p.created_at, p.path_part_id))
    return sorted(parts, key=lambda p: (p.materialized_path.casefold(), p.materialized_path))


def listing(parent: PathPart, max_depth: int, order: SortOrder, kinds: set[PartType] | None = None) -> list[PathPart]:
    parts = store.descendants(parent, max_depth)
    return sort([p for p in parts if kinds is None or p.part_type in kinds], order)


def _refuse_while_runs_write_to(part: PathPart) -> None:
    """Checked before the fence, so a refused delete leaves the subtree open to creates."""
    ids = {part.path_part_id, *(p.path_part_id for p in store.descendants(part))}
    blocking = runs.open_runs_writing_to(part.tenant_id, ids)
    if blocking:
        raise Conflict(f"{len(blocking)} workflow run(s) still PENDING or RUNNING write to {part.materialized_path}"
                       f" or below (run {blocking[0].id}); wait for them to end or cancel them")


def delete_subtree(part: PathPart) -> None:
    """Data first, path parts last: a delete cut short leaves a fenced part that can be deleted again."""
    _refuse_while_runs_write_to(part)
    subtree = store.fence_subtree(part)
    versions = [p.metadata_obj_id for p in subtree if p.part_type == PartType.DOCUMENT_VERSION]
    ingestion.discard(part.tenant_id, versions)
    permissions.delete_for_path_parts(part.tenant_id, {p.path_part_id for p in subtree})
    store.delete_parts(subtree)
