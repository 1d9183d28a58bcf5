"""Summaries fold bucket records into the KS WorkflowRunSummaryResponse shape; leaderboards rank keys."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pydantic
import pytest

from ksflow.analytics import buckets, histogram, summary
from ksflow.analytics.summary import BucketRecord

START = datetime(2024, 5, 1, tzinfo=UTC)
STATUSES = ["PENDING", "RUNNING", "COMPLETED", "FAILED"]


def test_empty_window_has_every_status_and_null_rates() -> None:
    result = summary.summarize([], window_start=START, window_end=None, active_definitions=3)
    assert result.model_dump(mode="json") == {
        "window_start": "2024-05-01T00:00:00Z", "window_end": None, "total": 0,
        "counts_by_state": dict.fromkeys(STATUSES, 0), "failure_rate": None,
        "duration_p50_seconds": None, "duration_p95_seconds": None, "pending_approval_count": 0,
        "oldest_pending_age_seconds": None,
        "adoption": {"runs": 0, "active_definitions": 3, "distinct_triggerers": 0},
    }


def test_fold_sums_counts_and_rates() -> None:
    records = [
        BucketRecord(START, {"COMPLETED": 3, "FAILED": 1, "PENDING": 2}, histogram.of([10, 20, 30, 40])),
        BucketRecord(START + timedelta(minutes=15), {"COMPLETED": Decimal(2), "RUNNING": Decimal(1)},
                     {"30": Decimal(2)}),
        BucketRecord(START + timedelta(hours=1), {"FAILED": 2, "SOMETHING_NEW": 5}, histogram.of([1, 2])),
    ]
    result = summary.summarize(records, window_start=START, window_end=START + timedelta(days=7),
                               active_definitions=2, distinct_triggerers=4)
    assert result.counts_by_state == {"PENDING": 2, "RUNNING": 1, "COMPLETED": 5, "FAILED": 3}
    assert result.total == result.adoption.runs == 11
    assert result.failure_rate == pytest.approx(3 / 8)
    assert result.adoption.distinct_triggerers == 4 and result.adoption.active_definitions == 2
    assert result.duration_p50_seconds is not None and result.duration_p95_seconds is not None


def test_failure_rate_definition() -> None:
    assert summary.failure_rate({"PENDING": 4, "RUNNING": 1}) is None
    assert summary.failure_rate({"COMPLETED": 4}) == 0.0
    assert summary.failure_rate({"FAILED": 2}) == 1.0
    assert summary.failure_rate({"COMPLETED": 1, "FAILED": 3, "PENDING": 100}) == 0.75


def test_records_outside_the_window_are_left_out_and_edges_count_whole() -> None:
    inside = BucketRecord(START + timedelta(hours=5), {"COMPLETED": 1})
    before = BucketRecord(START - timedelta(minutes=15), {"COMPLETED": 10})
    edge = BucketRecord(START - timedelta(minutes=15), {"FAILED": 100})  # holds 23:50, the window starts at 23:50
    after = BucketRecord(START + timedelta(days=1), {"COMPLETED": 1000})
    window_end = START + timedelta(days=1) - timedelta(microseconds=1)
    assert summary.summarize([inside, before, after], window_start=START, window_end=window_end).total == 1
    assert summary.summarize([inside, after], window_start=START, window_end=START + timedelta(days=1)).total == 1001
    assert summary.summarize([inside, after], window_start=START, window_end=None).total == 1001
    assert summary.summarize([edge], window_start=START - timedelta(minutes=10), window_end=None).total == 100


def test_fold_percentiles_match_exact_nearest_rank_within_bound() -> None:
    rng = random.Random(5)
    durations_by_bucket: dict[datetime, list[float]] = {}
    for _ in range(3000):
        created = START + timedelta(seconds=rng.uniform(0, 7 * 86400))
        seconds = math.exp(rng.uniform(0, math.log(86400)))
        durations_by_bucket.setdefault(buckets.bucket_start(created), []).append(seconds)
    records = [BucketRecord(start, {"COMPLETED": len(values)}, histogram.of(values))
               for start, values in durations_by_bucket.items()]
    every = sorted(value for values in durations_by_bucket.values() for value in values)
    result = summary.summarize(records, window_start=START, window_end=None)
    for reported, p in ((result.duration_p50_seconds, 50), (result.duration_p95_seconds, 95)):
        truth = every[math.ceil(p * len(every) / 100) - 1]
        assert reported is not None and abs(reported - truth) / truth <= histogram.MAX_RELATIVE_ERROR * (1 + 1e-9)
    assert result.total == 3000 and result.failure_rate == 0.0


def test_totals_and_top_rank_by_runs_in_window() -> None:
    a, b, c, d = (str(uuid4()) for _ in range(4))
    records = {
        a: [BucketRecord(START, {"COMPLETED": 3}), BucketRecord(START - timedelta(days=30), {"COMPLETED": 50})],
        b: [BucketRecord(START, {"FAILED": 2, "PENDING": 1})],
        c: [BucketRecord(START + timedelta(hours=1), {"RUNNING": 3})],
        d: [BucketRecord(START, {"COMPLETED": 1, "FAILED": -1})],  # moved away and back: nothing left
    }
    totals = summary.totals(records, START, None)
    assert totals == {a: 3, b: 3, c: 3}
    assert summary.top(totals, 10) == sorted([(a, 3), (b, 3), (c, 3)])
    assert summary.top({"x": 1, "y": 5, "z": 2, "w": 0}, 2) == [("y", 5), ("z", 2)]
    with pytest.raises(ValueError):
        summary.top(totals, 0)


def test_wire_models_match_the_reference_shapes() -> None:
    points = summary.RunTimeseriesResponse(
        timezone="Asia/Kolkata", bucket=buckets.TimeBucket.HOUR,
        points=[summary.TimeseriesPoint(bucket_start=datetime(2024, 5, 1, 9, tzinfo=buckets.zone("Asia/Kolkata")),
                                        count=6, counts_by_state={"COMPLETED": 5, "FAILED": 1})])
    # The reference's point is `{bucket_start, count}`; ksflow adds the count of each status.
    assert points.model_dump(mode="json") == {
        "timezone": "Asia/Kolkata", "bucket": "hour",
        "points": [{"bucket_start": "2024-05-01T09:00:00+05:30", "count": 6,
                    "counts_by_state": {"COMPLETED": 5, "FAILED": 1}}]}
    assert summary.HourHistogramResponse(timezone="UTC", counts_by_hour=[0] * 24).counts_by_hour == [0] * 24
    with pytest.raises(pydantic.ValidationError):
        summary.HourHistogramResponse(timezone="UTC", counts_by_hour=[0] * 23)
    entry = summary.LeaderboardEntry(id=uuid4(), name="Nightly digest", count=4)
    board = summary.WorkflowLeaderboardResponse(top_workflows=[entry], top_users=[])
    assert set(board.model_dump()) == {"top_workflows", "top_users"}
    assert set(entry.model_dump()) == {"id", "name", "count"}
