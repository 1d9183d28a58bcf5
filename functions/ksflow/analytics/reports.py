"""Summaries, time series, hours of day and leaderboards, folded from the aggregate items of a window.

A window is resolved to whole 15-minute buckets (its start rounded down, its end up): every IANA
offset is a multiple of 15 minutes, so local hours and days are whole buckets too. Its buckets
are read by key (BatchGetItem, 100 a request), so a 7-day window reads 672 keys whether the
tenant ran 10 runs or 10 million.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from ksflow import aws, clock
from ksflow.analytics import buckets, summary
from ksflow.analytics.buckets import TimeBucket
from ksflow.analytics.store import bucket_key
from ksflow.analytics.summary import BucketRecord, LeaderboardEntry
from ksflow.config import settings
from ksflow.errors import Invalid
from ksflow.identity import store as identity
from ksflow.workflows import definitions, run_store
from ksflow.workflows.models import RunStatus

DEFAULT_WINDOW = timedelta(days=7)
# Windows lie within these years, so a local week or month around them is still a date Python can hold.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
# The longest window a report reads: 35,136 buckets, about 352 reads of 100 keys.
MAX_WINDOW = timedelta(days=366)


@dataclass(frozen=True)
class Scope:
    """Whose runs a report covers: the tenant's, one definition's, or those of one creator's definitions."""

    tenant_id: str
    definition_id: str | None = None
    owner_id: str | None = None

    @property
    def _prefixes(self) -> tuple[str, str, str]:
        if self.definition_id is not None:
            return f"d_{self.definition_id}_", f"dh_{self.definition_id}_", f"du_{self.definition_id}_"
        if self.owner_id is not None:
            return f"o_{self.owner_id}_", f"oh_{self.owner_id}_", f"ou_{self.owner_id}_"
        return "n_", "h_", "u_"

    def record(self, start: datetime, item: dict[str, Any]) -> BucketRecord:
        counts, bins, _ = self._prefixes
        return BucketRecord(start=start,
                            counts={s.value: int(item.get(counts + s.value, 0)) for s in RunStatus},
                            histogram={name[len(bins):]: int(value) for name, value in item.items()
                                       if name.startswith(bins) and int(value) > 0})

    def invokers(self, item: dict[str, Any]) -> Counter[str]:
        prefix = self._prefixes[2]
        return Counter({name[len(prefix):]: int(value) for name, value in item.items()
                        if name.startswith(prefix) and int(value) > 0})


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime | None

    @classmethod
    def of(cls, since: datetime | None, until: datetime | None) -> Window:
        now = clock.now()
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and not EARLIEST <= moment < LATEST:
                raise Invalid(["query", name], f"{name} must be from {EARLIEST.year} to {LATEST.year - 1}")
        window = cls(since or now - DEFAULT_WINDOW, until)
        end = until or now
        if end < window.since:
            raise Invalid(["query", "since"], "since must not be later than until")
        if end - window.since > MAX_WINDOW:
            raise Invalid(["query", "since"], f"A window spans at most {MAX_WINDOW.days} days")
        return window

    @property
    def end(self) -> datetime:
        return self.until or clock.now()


def _buckets(scope: Scope, window: Window) -> list[tuple[datetime, dict[str, Any]]]:
    """The window's aggregate items, by bucket start (buckets no run was created in have none)."""
    return _bucket_items(scope.tenant_id, list(buckets.buckets_between(window.since, window.end)))


def _bucket_items(tenant_id: str, starts: list[datetime]) -> list[tuple[datetime, dict[str, Any]]]:
    """The aggregate items of the buckets starting at `starts`, read by key, with their starts."""
    items = aws.batch_get(aws.table(settings().table_name), [bucket_key(tenant_id, s) for s in starts],
                          consistent=False)
    by_key = {item["sk"]: item for item in items}
    return [(start, by_key[sk]) for start in starts if (sk := bucket_key(tenant_id, start)["sk"]) in by_key]


def created_in(tenant_id: str, starts: list[datetime], counters: list[str]) -> int:
    """The sum of some aggregate counters over the buckets starting at `starts` (read by key)."""
    return sum(int(item.get(name, 0)) for _, item in _bucket_items(tenant_id, starts) for name in counters)


def _active_definitions(scope: Scope) -> int:
    """Active definitions in scope, now: one COUNT query of the tenant's definitions (no runs read)."""
    if scope.definition_id is not None:
        found = definitions.get(scope.tenant_id, scope.definition_id)
        return int(found is not None and found.is_active)
    condition = Attr("is_active").eq(True)
    if scope.owner_id is not None:
        condition = condition & Attr("created_by").eq(scope.owner_id)
    return aws.count(aws.table(settings().table_name), {
        "FilterExpression": condition,
        "KeyConditionExpression": Key("pk").eq(f"TENANT#{scope.tenant_id}") & Key("sk").begins_with("WORKFLOWDEF#")})


def run_summary(scope: Scope, window: Window) -> summary.WorkflowRunSummaryResponse:
    buckets = _buckets(scope, window)
    invokers: Counter[str] = Counter()
    for _, item in buckets:
        invokers.update(scope.invokers(item))
    return summary.summarize([scope.record(start, item) for start, item in buckets],
                             window_start=window.since, window_end=window.until,
                             active_definitions=_active_definitions(scope), distinct_triggerers=len(invokers))


def _quarter_counts(scope: Scope, window: Window) -> dict[datetime, int]:
    return {start: scope.record(start, item).total() for start, item in _buckets(scope, window)}


def _zone(name: str) -> Any:
    try:
        return buckets.zone(name)
    except ValueError as error:
        raise Invalid(["query", "timezone"], str(error)) from error


def timeseries(scope: Scope, window: Window, unit: TimeBucket, timezone: str) -> summary.RunTimeseriesResponse:
    """Runs created per local hour, day, week or month, in all and by status; every bucket appears, empty as 0."""
    tz = _zone(timezone)
    records = [scope.record(start, item) for start, item in _buckets(scope, window)]

    def regrouped(counts: dict[datetime, int]) -> list[tuple[datetime, int]]:
        # Given the window, every series has the same local buckets in the same order.
        return buckets.timeseries(counts, tz, unit, buckets.bucket_start(window.since), window.end)

    totals = regrouped({record.start: record.total() for record in records})
    by_status = {status.value: regrouped({record.start: int(record.counts.get(status.value, 0)) for record in records})
                 for status in RunStatus}
    return summary.RunTimeseriesResponse(timezone=timezone, bucket=unit, points=[
        summary.TimeseriesPoint(bucket_start=start, count=count,
                                counts_by_state={status: series[index][1] for status, series in by_status.items()})
        for index, (start, count) in enumerate(totals)])


def by_hour(scope: Scope, window: Window, timezone: str) -> summary.HourHistogramResponse:
    return summary.HourHistogramResponse(timezone=timezone,
                                         counts_by_hour=buckets.by_hour(_quarter_counts(scope, window),
                                                                        _zone(timezone)))


def leaderboard(tenant_id: str, window: Window, limit: int) -> summary.WorkflowLeaderboardResponse:
    """Top definitions and invokers by runs created in the window; only the winners' names are read."""
    scope = Scope(tenant_id)
    per_definition: Counter[str] = Counter()
    per_user: Counter[str] = Counter()
    for _, item in _buckets(scope, window):
        per_user.update(scope.invokers(item))
        for name, value in item.items():
            if name.startswith("d_") and name.rsplit("_", 1)[-1] in RunStatus.__members__:
                per_definition[name[2:].rsplit("_", 1)[0]] += int(value)
    top_definitions = summary.top(per_definition, limit)
    top_users = summary.top(per_user, limit)
    table = aws.table(settings().table_name)
    names: dict[str, str] = {}
    keys = [run_store.definition_key(tenant_id, d) for d, _ in top_definitions]
    keys += [identity.user_key(tenant_id, u) for u, _ in top_users]
    for found in aws.batch_get(table, keys, consistent=False) if keys else []:
        names[found["sk"]] = str(found.get("name") or found.get("email") or "")
    return summary.WorkflowLeaderboardResponse(
        top_workflows=[LeaderboardEntry(id=d, name=names.get(run_store.definition_key(tenant_id, d)["sk"], ""),
                                        count=n) for d, n in top_definitions],
        top_users=[LeaderboardEntry(id=u, name=names.get(identity.user_key(tenant_id, u)["sk"], ""), count=n)
                   for u, n in top_users])
