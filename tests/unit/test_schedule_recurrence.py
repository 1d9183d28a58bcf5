"""Occurrences of scheduled definitions across daylight saving time, as EventBridge Scheduler fires them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ksflow.schedules.recurrence import cron_expression, next_occurrence


def occurrences(cadence: str, start_local: datetime, timezone: str, count: int) -> list[datetime]:
    found: list[datetime] = []
    after = datetime(1970, 1, 1, tzinfo=UTC)
    for _ in range(count):
        after = next_occurrence(cadence, start_local, timezone, after)
        found.append(after)
    return found


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(("timezone", "spring_forward", "before", "after_change"), [
    # 02:30 does not exist on these days; the day before is standard time, the day after summer time.
    ("America/New_York", datetime(2025, 3, 9), utc(2025, 3, 8, 7, 30), utc(2025, 3, 10, 6, 30)),
    ("Europe/Berlin", datetime(2025, 3, 30), utc(2025, 3, 29, 1, 30), utc(2025, 3, 31, 0, 30)),
])
def test_a_daily_time_that_does_not_exist_is_skipped_that_day(
        timezone: str, spring_forward: datetime, before: datetime, after_change: datetime) -> None:
    start = spring_forward.replace(hour=2, minute=30) - timedelta(days=1)
    assert cron_expression("DAILY", start) == "cron(30 2 * * ? *)"
    assert occurrences("DAILY", start, timezone, 2) == [before, after_change]


@pytest.mark.parametrize(("timezone", "fall_back", "first_instance", "next_day"), [
    # 01:30 happens twice on these days (02:30 in Berlin); it fires once, at the first.
    ("America/New_York", datetime(2025, 11, 2, 1, 30), utc(2025, 11, 2, 5, 30), utc(2025, 11, 3, 6, 30)),
    ("Europe/Berlin", datetime(2025, 10, 26, 2, 30), utc(2025, 10, 26, 0, 30), utc(2025, 10, 27, 1, 30)),
])
def test_a_repeated_daily_time_fires_once(
        timezone: str, fall_back: datetime, first_instance: datetime, next_day: datetime) -> None:
    day_before = fall_back - timedelta(days=1)
    found = occurrences("DAILY", day_before, timezone, 3)
    assert found[1:] == [first_instance, next_day]


def test_next_occurrence_is_strictly_after_the_given_time() -> None:
    start = datetime(2025, 11, 1, 1, 30)
    first_instance = utc(2025, 11, 2, 5, 30)
    assert next_occurrence("DAILY", start, "America/New_York", first_instance - timedelta(seconds=1)) == first_instance
    # Not again at the second 01:30 (06:30 UTC): the next is the following day.
    assert next_occurrence("DAILY", start, "America/New_York", first_instance) == utc(2025, 11, 3, 6, 30)


@pytest.mark.parametrize("timezone", ["America/New_York", "Europe/Berlin"])
def test_weekly_fires_on_the_start_dates_weekday_at_the_same_wall_time(timezone: str) -> None:
    start = datetime(2025, 3, 5, 9, 15)  # a Wednesday, before both spring transitions
    assert cron_expression("WEEKLY", start) == "cron(15 9 ? * WED *)"
    found = occurrences("WEEKLY", start, timezone, 5)
    local = [moment.astimezone(ZoneInfo(timezone)) for moment in found]
    assert [moment.weekday() for moment in local] == [2] * 5
    assert {(moment.hour, moment.minute) for moment in local} == {(9, 15)}
    assert [moment.day for moment in local] == [5, 12, 19, 26, 2]


@pytest.mark.parametrize(("timezone", "expected"), [
    ("America/New_York", [utc(2025, 1, 28, 23, 0), utc(2025, 2, 28, 23, 0), utc(2025, 3, 28, 22, 0)]),
    ("Europe/Berlin", [utc(2025, 1, 28, 17, 0), utc(2025, 2, 28, 17, 0), utc(2025, 3, 28, 17, 0),
                       utc(2025, 4, 28, 16, 0)]),
])
def test_monthly_on_day_28_fires_every_month(timezone: str, expected: list[datetime]) -> None:
    start = datetime(2025, 1, 28, 18, 0)
    assert cron_expression("MONTHLY", start) == "cron(0 18 28 * ? *)"
    assert occurrences("MONTHLY", start, timezone, len(expected)) == expected


def test_monthly_past_day_28_is_refused() -> None:
    with pytest.raises(ValueError, match="day 1-28"):
        cron_expression("MONTHLY", datetime(2025, 1, 29, 9, 0))


def test_no_occurrence_before_the_start() -> None:
    start = datetime(2025, 6, 10, 8, 0, tzinfo=UTC)
    assert next_occurrence("DAILY", start, "UTC", utc(2020, 1, 1)) == start
    assert next_occurrence("DAILY", start, "UTC", start) == start + timedelta(days=1)


def test_an_aware_start_is_read_as_wall_time_in_the_zone() -> None:
    start = utc(2025, 7, 1, 7, 0)  # 09:00 in Berlin summer time
    assert next_occurrence("DAILY", start, "Europe/Berlin", start) == utc(2025, 7, 2, 7, 0)
    assert next_occurrence("DAILY", start, "Europe/Berlin", utc(2025, 12, 1)) == utc(2025, 12, 1, 8, 0)
