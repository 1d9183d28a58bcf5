"""Run summaries, leaderboards and their wire shapes (KS 1.102 / 1.140), folded from bucket records.

The fold reads only aggregates (one record per 15-minute bucket and scope), never runs, so its
cost follows the window, not the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field

from ksflow.analytics import histogram
from ksflow.analytics.buckets import QUARTER, TimeBucket
from ksflow.workflows.models import RunStatus


class WorkflowAdoptionStats(BaseModel):
    """How much workflows are used (KS labels these adoption, not value)."""

    runs: int
    active_definitions: int
    distinct_triggerers: int


class WorkflowRunSummaryResponse(BaseModel):
    """Run health over a window of `created_at`; rates and percentiles are null without a denominator."""

    window_start: datetime
    window_end: datetime | None
    total: int
    counts_by_state: dict[str, int]
    failure_rate: float | None
    duration_p50_seconds: float | None
    duration_p95_seconds: float | None
    pending_approval_count: int = 0
    oldest_pending_age_seconds: float | None = None
    adoption: WorkflowAdoptionStats


class TimeseriesPoint(BaseModel):
    """Runs created in one local bucket: in all, and by current status (so a chart can stack them)."""

    bucket_start: datetime
    count: int
    counts_by_state: dict[str, int]  # beyond the reference shape: every status, 0 where none


class RunTimeseriesResponse(BaseModel):
    timezone: str
    bucket: TimeBucket
    points: list[TimeseriesPoint] | None = None


class HourHistogramResponse(BaseModel):
    timezone: str
    counts_by_hour: Annotated[list[int], Field(min_length=24, max_length=24)]


class LeaderboardEntry(BaseModel):
    id: UUID
    name: str
    count: int


class WorkflowLeaderboardResponse(BaseModel):
    top_workflows: list[LeaderboardEntry] | None = None
    top_users: list[LeaderboardEntry] | None = None


@dataclass(frozen=True)
class BucketRecord:
    """One scope's aggregate for one 15-minute bucket of run creation times.

    `counts` holds each run created in the bucket under its current status; `histogram` the
    durations of those that are terminal. DynamoDB's Decimal numbers are accepted as they come.
    """

    start: datetime
    counts: Mapping[str, int | Decimal] = field(default_factory=dict)
    histogram: histogram.HistogramLike = field(default_factory=dict)

    def total(self) -> int:
        return sum(int(self.counts.get(status.value, 0)) for status in RunStatus)


def overlaps(record: BucketRecord, window_start: datetime, window_end: datetime | None) -> bool:
    """Whether a bucket holds any moment of [window_start, window_end]; edge buckets count whole."""
    return record.start + QUARTER > window_start and (window_end is None or record.start <= window_end)


def summarize(records: Iterable[BucketRecord], *, window_start: datetime, window_end: datetime | None,
              active_definitions: int = 0, distinct_triggerers: int = 0) -> WorkflowRunSummaryResponse:
    """Fold the bucket records that overlap the window into a summary.

    Point-in-time and cross-scope figures (active definitions, distinct invokers) come from the
    caller, who reads them from their own aggregates; unknown status keys are ignored.
    """
    counts = {status.value: 0 for status in RunStatus}
    durations: list[histogram.HistogramLike] = []
    for record in records:
        if not overlaps(record, window_start, window_end):
            continue
        for status in RunStatus:
            counts[status.value] += int(record.counts.get(status.value, 0))
        durations.append(record.histogram)
    merged = histogram.merge(durations)
    total = sum(counts.values())
    return WorkflowRunSummaryResponse(
        window_start=window_start, window_end=window_end, total=total, counts_by_state=counts,
        failure_rate=failure_rate(counts),
        duration_p50_seconds=histogram.percentile(merged, 50), duration_p95_seconds=histogram.percentile(merged, 95),
        pending_approval_count=0, oldest_pending_age_seconds=None,
        adoption=WorkflowAdoptionStats(runs=total, active_definitions=active_definitions,
                                       distinct_triggerers=distinct_triggerers),
    )


def failure_rate(counts: Mapping[str, int]) -> float | None:
    """FAILED / (COMPLETED + FAILED), as KS defines it; None when no run is terminal."""
    failed = counts.get(RunStatus.FAILED.value, 0)
    terminal = counts.get(RunStatus.COMPLETED.value, 0) + failed
    return failed / terminal if terminal else None


def totals(records_by_key: Mapping[str, Iterable[BucketRecord]], window_start: datetime,
           window_end: datetime | None) -> dict[str, int]:
    """Runs per key (definition or invoker) in the window; keys with none are left out."""
    result: dict[str, int] = {}
    for key, records in records_by_key.items():
        value = sum(record.total() for record in records if overlaps(record, window_start, window_end))
        if value > 0:
            result[key] = value
    return result


def top(counts: Mapping[str, int], limit: int) -> list[tuple[str, int]]:
    """The `limit` keys with most runs, most first; ties by key so that pages are stable."""
    if limit < 1:
        raise ValueError(f"Limit must be at least 1, not {limit}")
    ranked = sorted(((key, value) for key, value in counts.items() if value > 0), key=lambda item: (-item[1], item[0]))
    return ranked[:limit]
