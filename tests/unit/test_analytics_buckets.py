"""15-minute UTC buckets regroup exactly into local hours, days, weeks and months, DST and half-hour zones included."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from ksflow.analytics import buckets
from ksflow.analytics.buckets import QUARTER, TimeBucket

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")
KATHMANDU = ZoneInfo("Asia/Kathmandu")
ZONES = [NEW_YORK, BERLIN, KOLKATA, KATHMANDU, ZoneInfo("UTC"), ZoneInfo("Australia/Adelaide"),
         ZoneInfo("Pacific/Chatham"), ZoneInfo("America/St_Johns")]
MICROSECOND = timedelta(microseconds=1)
UTC_ZONE = ZoneInfo("UTC")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
        microsecond: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


def oracle(moment: datetime, tz: ZoneInfo, unit: TimeBucket) -> Hashable:
    """Which local bucket a moment is in, from its wall clock alone (offset tells a repeated hour apart)."""
    local = moment.astimezone(tz)
    if unit is TimeBucket.HOUR:
        return local.date(), local.hour, local.utcoffset()
    if unit is TimeBucket.DAY:
        return local.date()
    if unit is TimeBucket.WEEK:
        return local.isocalendar()[:2]
    return local.year, local.month


def test_bucket_start_floors_to_the_quarter_in_utc() -> None:
    assert buckets.bucket_start(utc(2024, 5, 1, 10, 14, 59, 999999)) == utc(2024, 5, 1, 10, 0)
    assert buckets.bucket_start(utc(2024, 5, 1, 10, 15)) == utc(2024, 5, 1, 10, 15)
    assert buckets.bucket_start(utc(2024, 5, 1, 23, 59, 59)) == utc(2024, 5, 1, 23, 45)
    kathmandu = datetime(2024, 5, 1, 6, 0, tzinfo=timezone(timedelta(hours=5, minutes=45)))
    start = buckets.bucket_start(kathmandu)
    assert start == utc(2024, 5, 1, 0, 15) and start.utcoffset() == timedelta(0)
    with pytest.raises(ValueError):
        buckets.bucket_start(datetime(2024, 5, 1, 10, 0))  # naive


def test_buckets_between_is_inclusive_at_both_ends() -> None:
    since = utc(2024, 5, 1)
    assert len(list(buckets.buckets_between(since, since + timedelta(days=7)))) == 7 * 96 + 1
    assert list(buckets.buckets_between(utc(2024, 5, 1, 10, 7), utc(2024, 5, 1, 10, 31))) == [
        utc(2024, 5, 1, 10, 0), utc(2024, 5, 1, 10, 15), utc(2024, 5, 1, 10, 30)]
    assert list(buckets.buckets_between(since, since)) == [since]
    assert list(buckets.buckets_between(since, since - MICROSECOND)) == []


def test_zone_names_are_checked() -> None:
    assert buckets.zone("Asia/Kathmandu") == KATHMANDU
    for bad in ("Mars/Olympus_Mons", "../../etc/passwd", "", "/etc/localtime"):
        with pytest.raises(ValueError):
            buckets.zone(bad)


def test_new_york_repeated_hour_is_two_points() -> None:
    # 2024-11-03: 01:00-02:00 happens at -04:00 (05:00Z) and again at -05:00 (06:00Z).
    counts = {utc(2024, 11, 3, 5, 0): 1, utc(2024, 11, 3, 5, 45): 2,
              utc(2024, 11, 3, 6, 0): 4, utc(2024, 11, 3, 6, 30): 8}
    points = buckets.timeseries(counts, NEW_YORK, TimeBucket.HOUR)
    assert [(start.isoformat(), count) for start, count in points] == [
        ("2024-11-03T01:00:00-04:00", 3), ("2024-11-03T01:00:00-05:00", 12)]
    assert buckets.by_hour(counts, NEW_YORK)[1] == 15


def test_new_york_days_last_23_and_25_hours() -> None:
    spring = list(buckets.buckets_between(utc(2024, 3, 10, 5), utc(2024, 3, 11, 3, 45)))
    fall = list(buckets.buckets_between(utc(2024, 11, 3, 4), utc(2024, 11, 4, 4, 45)))
    assert len(spring) == 23 * 4 and len(fall) == 25 * 4
    for quarters, day in ((spring, "2024-03-10"), (fall, "2024-11-03")):
        points = buckets.timeseries(dict.fromkeys(quarters, 1), NEW_YORK, TimeBucket.DAY)
        assert [(start.isoformat(), count) for start, count in points] == [(f"{day}T00:00:00{start_offset(day)}",
                                                                             len(quarters))]


def start_offset(day: str) -> str:
    return "-05:00" if day == "2024-03-10" else "-04:00"


def test_berlin_spring_gap_and_fall_repeat() -> None:
    # 2024-03-31 02:00 does not exist; 2024-10-27 02:00-03:00 happens twice.
    counts = dict.fromkeys(buckets.buckets_between(utc(2024, 3, 31, 0), utc(2024, 3, 31, 1, 45)), 1)
    hours = buckets.timeseries(counts, BERLIN, TimeBucket.HOUR)
    assert [start.isoformat() for start, _ in hours] == ["2024-03-31T01:00:00+01:00", "2024-03-31T03:00:00+02:00"]
    october = dict.fromkeys(buckets.buckets_between(utc(2024, 10, 26, 22), utc(2024, 10, 27, 22, 45)), 1)
    assert buckets.timeseries(october, BERLIN, TimeBucket.DAY) == [(datetime(2024, 10, 27, tzinfo=BERLIN), 100)]
    repeated = [start.isoformat() for start, _ in buckets.timeseries(october, BERLIN, TimeBucket.HOUR)][2:4]
    assert repeated == ["2024-10-27T02:00:00+02:00", "2024-10-27T02:00:00+01:00"]
    assert buckets.by_hour(october, BERLIN)[2] == 8 and sum(buckets.by_hour(october, BERLIN)) == 100


def test_kolkata_hours_start_on_the_half_hour() -> None:
    counts = {utc(2024, 5, 1, 3, 15): 1, utc(2024, 5, 1, 3, 30): 2,
              utc(2024, 5, 1, 4, 15): 4, utc(2024, 5, 1, 4, 30): 8}
    points = buckets.timeseries(counts, KOLKATA, TimeBucket.HOUR)
    assert [(start.isoformat(), count) for start, count in points] == [
        ("2024-05-01T08:00:00+05:30", 1), ("2024-05-01T09:00:00+05:30", 6), ("2024-05-01T10:00:00+05:30", 8)]
    assert buckets.by_hour(counts, KOLKATA)[8:11] == [1, 6, 8]
    # A local month starts at 18:30Z the day before.
    month = buckets.timeseries({utc(2024, 2, 29, 18, 15): 1, utc(2024, 2, 29, 18, 30): 1}, KOLKATA, TimeBucket.MONTH)
    assert [start.isoformat() for start, _ in month] == ["2024-02-01T00:00:00+05:30", "2024-03-01T00:00:00+05:30"]


def test_kathmandu_hours_start_at_quarter_past() -> None:
    counts = {utc(2024, 5, 1, 0, 0): 1, utc(2024, 5, 1, 0, 15): 2, utc(2024, 5, 1, 1, 0): 4, utc(2024, 5, 1, 1, 15): 8}
    assert buckets.by_hour(counts, KATHMANDU)[5:8] == [1, 6, 8]
    points = buckets.timeseries(counts, KATHMANDU, TimeBucket.HOUR)
    assert [start.isoformat() for start, _ in points] == [
        "2024-05-01T05:00:00+05:45", "2024-05-01T06:00:00+05:45", "2024-05-01T07:00:00+05:45"]


def test_weeks_start_on_local_monday() -> None:
    # Monday 2024-04-29 00:00 in Kathmandu is Sunday 18:15Z.
    counts = {utc(2024, 4, 28, 18, 0): 1, utc(2024, 4, 28, 18, 15): 2}
    points = buckets.timeseries(counts, KATHMANDU, TimeBucket.WEEK)
    assert [(start.isoformat(), count) for start, count in points] == [
        ("2024-04-22T00:00:00+05:45", 1), ("2024-04-29T00:00:00+05:45", 2)]


@pytest.mark.parametrize("unit", list(TimeBucket))
@pytest.mark.parametrize("tz", ZONES, ids=str)
def test_regrouped_quarters_equal_grouping_each_run_by_its_own_moment(tz: ZoneInfo, unit: TimeBucket) -> None:
    rng = random.Random(f"{tz}-{unit}")
    start = utc(2024, 1, 1)
    moments = [start + timedelta(seconds=rng.uniform(0, 366 * 86400)) for _ in range(3000)]
    quarters = buckets.quarter_counts((moment, 1) for moment in moments)
    by_moment = Counter(oracle(moment, tz, unit) for moment in moments)
    points = buckets.timeseries(quarters, tz, unit)
    assert {oracle(point, tz, unit): count for point, count in points} == dict(by_moment)
    assert sum(count for _, count in points) == len(moments)
    if unit is TimeBucket.HOUR:
        by_hour = Counter(moment.astimezone(tz).hour for moment in moments)
        assert buckets.by_hour(quarters, tz) == [by_hour[hour] for hour in range(24)]


@pytest.mark.parametrize("unit", list(TimeBucket))
@pytest.mark.parametrize("tz", ZONES, ids=str)
def test_local_buckets_tile_the_window(tz: ZoneInfo, unit: TimeBucket) -> None:
    """Each start is the first instant of its bucket, and the next start the first instant after it."""
    since, until = utc(2023, 12, 25, 7, 7), utc(2025, 1, 3, 1, 1)
    starts = list(buckets.local_buckets_between(since, until, tz, unit))
    assert starts[0] <= since < (starts[1] if len(starts) > 1 else until + MICROSECOND)
    assert starts[-1] <= until
    for previous, current in itertools.pairwise(starts):
        assert previous < current
        assert oracle(current - MICROSECOND, tz, unit) == oracle(previous, tz, unit) != oracle(current, tz, unit)
        assert buckets.bucket_start(current) == current  # local edges fall on quarter edges
    assert len(starts) == len({oracle(start, tz, unit) for start in starts})


def test_window_fills_empty_buckets_and_leaves_out_other_quarters() -> None:
    counts = {utc(2024, 5, 1, 3, 0): 5, utc(2024, 5, 1, 5, 30): 1, utc(2024, 5, 1, 9, 0): 7}
    points = buckets.timeseries(counts, KOLKATA, TimeBucket.HOUR,
                                since=utc(2024, 5, 1, 4, 0), until=utc(2024, 5, 1, 6, 59))
    assert [(start.isoformat(), count) for start, count in points] == [
        ("2024-05-01T09:00:00+05:30", 0), ("2024-05-01T10:00:00+05:30", 0),
        ("2024-05-01T11:00:00+05:30", 1), ("2024-05-01T12:00:00+05:30", 0)]
    week = buckets.timeseries({}, NEW_YORK, TimeBucket.DAY, since=utc(2024, 3, 4, 5), until=utc(2024, 3, 11, 3, 59))
    assert [count for _, count in week] == [0] * 7
    assert buckets.by_hour({}, KOLKATA) == [0] * 24


def test_misaligned_or_naive_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        buckets.timeseries({utc(2024, 5, 1, 3, 7): 1}, UTC_ZONE, TimeBucket.HOUR)
    with pytest.raises(ValueError):
        buckets.by_hour({datetime(2024, 5, 1, 3, 0): 1}, UTC_ZONE)



def test_bucket_start_of_many_random_moments() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        moment = utc(2024, 1, 1) + timedelta(microseconds=rng.randint(0, 10**13))
        start = buckets.bucket_start(moment)
        assert start <= moment < start + QUARTER and start.minute % 15 == 0 and start.second == start.microsecond == 0


def test_chatham_hour_cut_by_the_gap_starts_at_the_transition() -> None:
    # Pacific/Chatham (+12:45/+13:45) springs from 02:45 to 03:45 on 2024-09-29, at 14:00Z the day before.
    chatham = ZoneInfo("Pacific/Chatham")
    counts = dict.fromkeys(buckets.buckets_between(utc(2024, 9, 28, 13, 0), utc(2024, 9, 28, 14, 30)), 1)
    points = buckets.timeseries(counts, chatham, TimeBucket.HOUR)
    assert [(start.isoformat(), count) for start, count in points] == [
        ("2024-09-29T01:00:00+12:45", 1), ("2024-09-29T02:00:00+12:45", 3),
        ("2024-09-29T03:45:00+13:45", 1), ("2024-09-29T04:00:00+13:45", 2)]
    assert buckets.local_start(utc(2024, 9, 28, 14, 7), chatham, TimeBucket.HOUR) == utc(2024, 9, 28, 14, 0)
