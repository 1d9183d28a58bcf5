"""Pages of a part's children, in the API's sort orders.

A part that a principal can read has only readable descendants (grants cover subtrees), so
listings check the parent once. Direct children (max_depth 1) are read from their listing
entries (`store.listed_entries`): one query per part type reads the page's entries (and those
before it, for an offset), then one batched read gets their parts, so a page costs the same
in a folder of ten children or of a million. `total` is the parent's maintained counts. Deeper
listings read the whole subtree down to max_depth and sort it in memory.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from ksflow.knowledge import store
from ksflow.knowledge.models import PartType, PathPart
from ksflow.knowledge.store import ListingOrder


class SortOrder(StrEnum):
    """The SDK's PathOrder. ksflow keeps no manual order, so LOGICAL is NAME."""

    LOGICAL = "LOGICAL"
    NAME = "NAME"
    UPDATED_AT = "UPDATED_AT"
    CREATED_AT = "CREATED_AT"


_INDEXED_ORDER = {SortOrder.LOGICAL: ListingOrder.NAME, SortOrder.NAME: ListingOrder.NAME,
                  SortOrder.CREATED_AT: ListingOrder.CREATED, SortOrder.UPDATED_AT: ListingOrder.UPDATED}
_CHILD_TYPES = {PartType.FOLDER: [PartType.FOLDER, PartType.DOCUMENT], PartType.DOCUMENT: [PartType.DOCUMENT_VERSION],
                PartType.DOCUMENT_VERSION: []}


def sort(parts: list[PathPart], order: SortOrder) -> list[PathPart]:
    """NAME orders by materialized path, so deeper listings show each parent before its children."""
    if order == SortOrder.UPDATED_AT:
        return sorted(parts, key=lambda p: (p.updated_at, p.path_part_id), reverse=True)
    if order == SortOrder.CREATED_AT:
        return sorted(parts, key=lambda p: (p.created_at, p.path_part_id))
    return sorted(parts, key=lambda p: store.name_order(p.materialized_path))


def page(parent: PathPart, max_depth: int, order: SortOrder, kinds: set[PartType] | None, limit: int,
         offset: int) -> tuple[list[PathPart], int]:
    """One page of the parent's descendants of the given kinds (all if None), and how many there are."""
    types = [t for t in _CHILD_TYPES[parent.part_type] if kinds is None or t in kinds]
    if max_depth == 1:
        state = store.listing_state(parent)
        if not state.get(store.LISTED) and store.index_children(parent):
            state = store.listing_state(parent)
        if state.get(store.LISTED):
            ids = _first_entries(parent, types, _INDEXED_ORDER[order], offset + limit)[offset:offset + limit]
            parts = store.get_path_parts(parent.tenant_id, ids)
            return [parts[pp] for pp in ids if pp in parts], store.children_count(state, types)
    # Deeper listings, and a part whose children could not be indexed (they kept changing).
    found = sort([p for p in store.descendants(parent, max_depth) if kinds is None or p.part_type in kinds], order)
    return found[offset:offset + limit], len(found)


def _name_prefix(entry: dict[str, Any], prefix: str) -> str:
    """The case-folded name prefix a NAME entry's key holds (see `store.name_key`)."""
    return str(entry["sk"])[len(prefix):].split("\x00", 1)[0]


def _with_name_ties(tenant_id: str, prefix: str, entries: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """`entries` (the first count + 1 in key order), plus every later entry that may precede one of them.

    Keys order names exactly except among names whose keys share a prefix: names equal but for
    case, and names cut at `NAME_KEY_PREFIX_BYTES` (a cut name may belong after a longer key that
    extends its prefix). Such an entry can be overtaken only by later keys that start with its
    prefix, and then the entry after the first `count` does too: those keys are read as well.
    """
    if len(entries) <= count:
        return entries
    following = _name_prefix(entries[-1], prefix)
    # A cut name may be overtaken by any key extending its prefix; an exact one only by its case variants.
    anchors = [name_prefix if store.name_is_cut(e["name"]) else name_prefix + "\x00"
               for e in entries[:-1] for name_prefix in [_name_prefix(e, prefix)]
               if name_prefix == following or (store.name_is_cut(e["name"]) and following.startswith(name_prefix))]
    if not anchors:
        return entries
    return entries + store.listed_entries(tenant_id, prefix + min(anchors, key=len), None, after=entries[-1])


def _first_entries(parent: PathPart, types: list[PartType], order: ListingOrder, count: int) -> list[str]:
    """Ids of the parent's first `count` children of the given types, in the order asked.

    Each type's entries are read in key order; names are then ordered by the name itself, times by
    key (time, then id, as the in-memory sort does), and the types merged.
    """
    ranked: list[tuple[Any, str]] = []
    for part_type in types:
        prefix = store.listed_prefix(parent.path_part_id, part_type, order)
        if order == ListingOrder.NAME:
            entries = _with_name_ties(parent.tenant_id, prefix,
                                      store.listed_entries(parent.tenant_id, prefix, count + 1), count)
            ranked.extend((store.name_order(e["name"]), e["path_part_id"]) for e in entries)
        else:
            entries = store.listed_entries(parent.tenant_id, prefix, count, forward=order == ListingOrder.CREATED)
            ranked.extend((str(e["sk"])[len(prefix):], e["path_part_id"]) for e in entries)
    ranked.sort(key=lambda rank_and_id: rank_and_id[0], reverse=order == ListingOrder.UPDATED)
    return [path_part_id for _, path_part_id in ranked[:count]]
