"""Listing runs: each filter and sort is answered by the index that serves it, or, bounded, by `runs-by-created`.

Served in O(page) (an index read of `offset + limit` keys, then one BatchGetItem of the page with
the counter item that holds `total`):
- no filter (OWNER/ADMIN: `runs-by-created`; USER: `runs-by-owner`);
- status, one or more (`runs-by-status` / `runs-by-owner-status`; one read per status, merged);
- invoker (`mine`, `invoked_by`) for OWNER/ADMIN (`runs-by-invoker`);
- a definition (its `gsi1` partition, whose items are whole runs; `total` is its `run_count`);
- sort by STARTED_AT or COMPLETED_AT with no filter, for OWNER/ADMIN.
A created range narrows any of these by key, and its `total` is a COUNT of the range's index keys
(no runs are read, ~7,000 keys per request). Everything else (several filters at once, trigger,
updated ranges, a USER's mine or other sorts) reads `runs-by-created` (or the definition's
partition) with a FilterExpression over the attributes it holds, at most `FILTERED_READ_LIMIT`
index entries, and sorts the matches in memory; more is a 422 that says how to narrow it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase, Key

from ksflow import aws, clock
from ksflow.analytics import buckets, reports
from ksflow.config import settings
from ksflow.errors import Invalid, Unavailable
from ksflow.identity.models import Principal
from ksflow.runindex import counters, layout
from ksflow.runindex.layout import RunIndex
from ksflow.workflows import definitions, runs
from ksflow.workflows.models import RunStatus, RunTrigger, WorkflowRun

# Index entries a filtered listing may read before it asks the caller to narrow the query.
FILTERED_READ_LIMIT = 20_000


class RunOrder(StrEnum):
    STARTED_AT = "STARTED_AT"
    CREATED_AT = "CREATED_AT"
    COMPLETED_AT = "COMPLETED_AT"


@dataclass(frozen=True)
class RunFilters:
    statuses: frozenset[RunStatus] = frozenset()
    definition_id: str | None = None
    invoked_by: str | None = None
    trigger: RunTrigger | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    order: RunOrder = RunOrder.CREATED_AT
    descending: bool = True


@dataclass
class _Source:
    """One index partition, optionally narrowed to a sort-key prefix and a created range."""

    index: str
    partition_key: str
    partition: str
    sort_key: str
    prefix: str = ""
    # With `prefix`, the part of the sort key after it is `{created}#{run_id}`.
    created: bool = True
    filters: list[ConditionBase] = field(default_factory=list)

    def condition(self, after: datetime | None, before: datetime | None) -> Any:
        condition = Key(self.partition_key).eq(self.partition)
        if self.created and (after is not None or before is not None):
            # Sort keys are `{prefix}{created}#{run_id}` with fixed-width times: `{prefix}{after}` sorts just before
            # the runs created at `after` (included), `{prefix}{before}` just before those created at `before`
            # (excluded), and `~` after every time.
            low = self.prefix + (clock.iso(after) if after else "")
            high = self.prefix + (clock.iso(before) if before else "~")
            if not low:
                return condition & Key(self.sort_key).lt(high)
            return condition & Key(self.sort_key).between(low, high)
        return condition & Key(self.sort_key).begins_with(self.prefix) if self.prefix else condition


@dataclass(frozen=True)
class _Counted:
    """Where a listing's total is kept: a counter item and what of it counts, and the aggregate counters of the
    same runs (for a created range)."""

    key: dict[str, str]
    of: Callable[[dict[str, Any] | None], int]
    aggregates: list[str]


def _created_sort(source: _Source, entry: dict[str, Any]) -> str:
    return str(entry[source.sort_key])[len(source.prefix):]


class _Plan:
    def __init__(self, principal: Principal, filters: RunFilters) -> None:
        self.principal, self.filters = principal, filters
        self.table = aws.table(settings().table_name)
        deployed = {index.name for index in layout.RUN_INDEXES[:settings().run_index_count]}
        self.has = deployed.__contains__

    # -- reading index partitions ---------------------------------------------------------------------------

    def _read(self, source: _Source, limit: int | None, *, forward: bool) -> list[dict[str, Any]]:
        request: dict[str, Any] = {"IndexName": source.index, "ScanIndexForward": forward,
                                   "KeyConditionExpression": source.condition(self.filters.created_after,
                                                                              self.filters.created_before)}
        return aws.query(self.table, request, limit)

    def _count(self, source: _Source, after: datetime | None, before: datetime | None) -> int:
        """How many entries the source holds created in [after, before): a COUNT of index keys, no runs read."""
        return aws.count(self.table, {"IndexName": source.index, "KeyConditionExpression": source.condition(after,
                                                                                                             before)})

    def _merged(self, sources: list[_Source], reach: int) -> list[dict[str, Any]]:
        """The first `reach` entries of several sources of one order, merged by created time."""
        forward = not self.filters.descending
        reads = [[(_created_sort(s, e), e) for e in self._read(s, reach, forward=forward)] for s in sources]
        merged = heapq.merge(*reads, key=lambda pair: pair[0], reverse=not forward)
        return [entry for _, entry in list(merged)[:reach]]

    # -- the plans ----------------------------------------------------------------------------------------------

    def _scope(self) -> str:
        return layout.partition(self.principal.tenant_id)

    def _source(self, index: RunIndex, prefix: str = "", *, created: bool = True) -> _Source:
        return _Source(index.name, layout.PARTITION, self._scope(), index.sort_key, prefix, created)

    def _counter(self) -> dict[str, str]:
        tenant = self.principal.tenant_id
        if self.principal.is_admin:
            return counters.tenant_key(tenant)
        return counters.owner_key(tenant, self.principal.user_id)

    def page(self, limit: int, offset: int) -> tuple[list[WorkflowRun], int]:
        f = self.filters
        if f.definition_id is not None:
            return self._definition_page(limit, offset)
        simple = f.trigger is None and f.updated_after is None and f.updated_before is None
        admin = self.principal.is_admin
        if simple and f.order == RunOrder.CREATED_AT:
            if not f.statuses and f.invoked_by is None:
                index = layout.BY_CREATED if admin else layout.BY_OWNER
                if self.has(index.name):
                    prefix = "" if admin else f"{self.principal.user_id}#"
                    return self._keyed_page([self._source(index, prefix)], limit, offset, self._sum_counter())
            if f.statuses and f.invoked_by is None:
                index = layout.BY_STATUS if admin else layout.BY_OWNER_STATUS
                if self.has(index.name):
                    owner = "" if admin else f"{self.principal.user_id}#"
                    sources = [self._source(index, f"{owner}{status.value}#") for status in sorted(f.statuses)]
                    return self._keyed_page(sources, limit, offset, self._sum_counter(f.statuses))
            if not f.statuses and f.invoked_by is not None and admin and self.has(layout.BY_INVOKER.name):
                source = self._source(layout.BY_INVOKER, f"{f.invoked_by}#")
                key = counters.invoker_key(self.principal.tenant_id, f.invoked_by)
                return self._keyed_page([source], limit, offset, _Counted(key, counters.invoked, [f"u_{f.invoked_by}"]))
        if (simple and admin and not f.statuses and f.invoked_by is None and f.created_after is None
                and f.created_before is None):
            if f.order == RunOrder.STARTED_AT and self.has(layout.BY_STARTED.name):
                source = self._source(layout.BY_STARTED, created=False)
                return self._keyed_page([source], limit, offset, self._sum_counter())
            if (f.order == RunOrder.COMPLETED_AT and self.has(layout.BY_COMPLETED.name)
                    and self.has(layout.BY_STATUS.name)):
                return self._completed_page(limit, offset)
        return self._filtered_page(self._source(layout.BY_CREATED), limit, offset)

    def _sum_counter(self, statuses: Iterable[RunStatus] = ()) -> _Counted:
        wanted = set(statuses) or set(RunStatus)
        scope = "n_" if self.principal.is_admin else f"o_{self.principal.user_id}_"
        return _Counted(self._counter(),
                        lambda item: sum(n for s, n in counters.status_counts(item).items() if s in wanted),
                        [f"{scope}{status.value}" for status in sorted(wanted)])

    def _keyed_page(self, sources: list[_Source], limit: int, offset: int,
                    counted: _Counted) -> tuple[list[WorkflowRun], int]:
        """The page from index keys, then its runs and the counter item in one BatchGetItem."""
        entries = self._merged(sources, offset + limit)[offset:offset + limit]
        found = self._runs_and(entries, counted.key)
        everything = counted.of(found.pop(_key_id(counted.key), None))
        return self._ordered(entries, found), self._total(sources, counted.aggregates, everything)

    def _total(self, sources: list[_Source], aggregates: list[str], everything: int) -> int:
        """How many of the sources' runs the created range holds, or all of them without one.

        From the aggregates' 15-minute buckets (`analytics`) for the whole buckets of the range, and a COUNT
        of index keys only for the parts of a bucket at either end: no more than 30 minutes of runs are
        counted, whatever the range. A range that reaches past `reports.MAX_WINDOW` is counted by key.
        """
        after, before = self.filters.created_after, self.filters.created_before
        if after is None and before is None:
            return everything
        now = clock.now()
        if after is None:
            # Runs created before `before`: all of them but those created since.
            assert before is not None
            return everything - (self._between(sources, aggregates, before, now) if before <= now else 0)
        return self._between(sources, aggregates, after, before or now)

    def _between(self, sources: list[_Source], aggregates: list[str], low: datetime, high: datetime) -> int:
        if high - low > reports.MAX_WINDOW:
            return sum(self._count(s, low, high) for s in sources)
        whole = list(buckets.buckets_between(low + buckets.QUARTER - timedelta(microseconds=1), high))[:-1]
        if not whole:
            return sum(self._count(s, low, high) for s in sources)
        edges = sum(self._count(s, low, whole[0]) + self._count(s, whole[-1] + buckets.QUARTER, high)
                    for s in sources)
        return edges + reports.created_in(self.principal.tenant_id, whole, aggregates)

    def _runs_and(self, entries: list[dict[str, Any]], extra: dict[str, str] | None) -> dict[str, dict[str, Any]]:
        keys = [{"pk": e["pk"], "sk": e["sk"]} for e in entries] + ([extra] if extra else [])
        return {_key_id(item): item for item in aws.batch_get(self.table, keys, consistent=False)} if keys else {}

    @staticmethod
    def _ordered(entries: list[dict[str, Any]], found: dict[str, dict[str, Any]]) -> list[WorkflowRun]:
        """The page's runs in index order; a run deleted since the index was read is left out."""
        items = (found.get(_key_id(e)) for e in entries)
        return runs.fit_response_budget([WorkflowRun.model_validate(item) for item in items if item is not None])

    def _completed_page(self, limit: int, offset: int) -> tuple[list[WorkflowRun], int]:
        """Ended runs by `completed_at`, then the open ones (newest created first, or oldest when ascending)."""
        counts = counters.status_counts(self.table.get_item(Key=self._counter()).get("Item"))
        ended = sum(n for status, n in counts.items() if status.terminal)
        entries: list[dict[str, Any]] = []
        if offset < ended:
            source = self._source(layout.BY_COMPLETED, created=False)
            entries = self._read(source, offset + limit, forward=not self.filters.descending)[offset:]
        if len(entries) < limit:
            open_offset = max(0, offset - ended)
            sources = [self._source(layout.BY_STATUS, f"{s.value}#") for s in (RunStatus.PENDING, RunStatus.RUNNING)]
            wanted = limit - len(entries)
            entries += self._merged(sources, open_offset + wanted)[open_offset:open_offset + wanted]
        return self._ordered(entries, self._runs_and(entries, None)), sum(counts.values())

    def _definition_page(self, limit: int, offset: int) -> tuple[list[WorkflowRun], int]:
        f = self.filters
        definition = definitions.get_visible(self.principal, str(f.definition_id))
        source = _Source("gsi1", "gsi1pk", f"WORKFLOWDEF#{definition.id}", "gsi1sk")
        simple = (not f.statuses and f.invoked_by is None and f.trigger is None and f.updated_after is None
                  and f.updated_before is None and f.order == RunOrder.CREATED_AT)
        if not simple:
            return self._filtered_page(source, limit, offset)
        items = self._read(source, offset + limit, forward=not f.descending)[offset:offset + limit]
        total = self._total([source], [f"d_{definition.id}_{s.value}" for s in RunStatus], definition.run_count)
        return runs.fit_response_budget([WorkflowRun.model_validate(item) for item in items]), total

    # -- the bounded path -----------------------------------------------------------------------------------------

    def _filter(self) -> ConditionBase | None:
        f, conditions = self.filters, []
        if not self.principal.is_admin:
            conditions.append(Attr("definition_owner_id").eq(self.principal.user_id))
        if f.statuses:
            conditions.append(Attr("status").is_in([s.value for s in f.statuses]))
        if f.invoked_by is not None:
            conditions.append(Attr("user_id").eq(f.invoked_by))
        if f.trigger is not None:
            conditions.append(Attr("trigger").eq(f.trigger.value))
        if f.updated_after is not None:
            conditions.append(Attr("updated_at").gte(clock.iso(f.updated_after)))
        if f.updated_before is not None:
            conditions.append(Attr("updated_at").lt(clock.iso(f.updated_before)))
        combined: ConditionBase | None = None
        for condition in conditions:
            combined = condition if combined is None else combined & condition
        return combined

    def _matches(self, source: _Source) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {"IndexName": source.index,
                                   "KeyConditionExpression": source.condition(self.filters.created_after,
                                                                              self.filters.created_before)}
        condition = self._filter()
        if condition is not None:
            request["FilterExpression"] = condition
        read = 0
        while True:
            page = self.table.query(**request)
            read += page["ScannedCount"]
            if read > FILTERED_READ_LIMIT:
                raise Invalid(["query"], f"These filters would read more than {FILTERED_READ_LIMIT} runs; narrow them "
                              "with created_after/created_before or definition_id, or use one filter at a time")
            yield from page["Items"]
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _filtered_page(self, source: _Source, limit: int, offset: int) -> tuple[list[WorkflowRun], int]:
        if source.index != "gsi1" and not self.has(layout.BY_CREATED.name):
            raise Unavailable("The run indexes are being created; list runs by definition meanwhile")
        matches = list(self._matches(source))
        matches.sort(key=self._sort_key, reverse=self.filters.descending)
        if self.filters.order == RunOrder.COMPLETED_AT:
            # Runs not yet completed come after the completed ones in either direction.
            matches.sort(key=lambda e: "completed_at" not in e)
        entries = matches[offset:offset + limit]
        if source.index == "gsi1":
            return runs.fit_response_budget([WorkflowRun.model_validate(e) for e in entries]), len(matches)
        return self._ordered(entries, self._runs_and(entries, None)), len(matches)

    def _sort_key(self, entry: dict[str, Any]) -> tuple[str, str]:
        field_name = {RunOrder.CREATED_AT: "created_at", RunOrder.STARTED_AT: "started_at",
                      RunOrder.COMPLETED_AT: "completed_at"}[self.filters.order]
        return str(entry.get(field_name) or entry["created_at"]), str(entry["pk"])


def _key_id(item: dict[str, Any]) -> str:
    return f"{item['pk']}\0{item['sk']}"


def page(principal: Principal, filters: RunFilters, limit: int, offset: int) -> tuple[list[WorkflowRun], int]:
    """A page of the runs the caller may read that match `filters`, and how many match in all."""
    return _Plan(principal, filters).page(limit, offset)


