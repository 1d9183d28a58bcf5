"""15-minute UTC buckets, and their regrouping into a caller's local hours, days, weeks and months.

Counts are kept per 15 minutes of UTC because every zone in use today is offset from UTC by a
multiple of 15 minutes (Asia/Kolkata +5:30, Asia/Kathmandu +5:45, and every DST shift): a quarter
never straddles a local hour, so regrouping into any zone's calendar is exact, where hourly UTC
buckets would split half-hour zones' hours. Local bucket boundaries follow the zone's calendar,
so a local day may last 23 or 25 hours, a repeated DST hour is two distinct hours, and an hour cut
short by a gap starts at the transition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

QUARTER = timedelta(minutes=15)


class TimeBucket(StrEnum):
    """Granularity of a time series (KS `TimeBucket`)."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"A moment must carry its timezone: {moment!r}")
    return moment.astimezone(UTC)


def bucket_start(moment: datetime) -> datetime:
    """The start (UTC) of the 15-minute bucket holding a moment."""
    utc = _utc(moment)
    return utc.replace(minute=utc.minute - utc.minute % 15, second=0, microsecond=0)


def buckets_between(since: datetime, until: datetime) -> Iterator[datetime]:
    """Starts of the buckets that hold any moment of [since, until], both inclusive; none if until < since."""
    if _utc(until) < _utc(since):
        return
    current, last = bucket_start(since), bucket_start(until)
    while current <= last:
        yield current
        current += QUARTER


def zone(name: str) -> ZoneInfo:
    """An IANA zone by name; ValueError for a name that is not one, so callers answer 422, not 500."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:
        raise ValueError(f"Unknown timezone: {name!r}") from error


def _hour_of(moment: datetime, tz: ZoneInfo) -> tuple[date, int, timedelta | None]:
    local = moment.astimezone(tz)
    return local.date(), local.hour, local.utcoffset()


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a local day, even when its midnight is skipped or repeated."""
    # fold=0 gives the earlier of a repeated midnight and, for a skipped one, an instant just after the
    # gap; stepping back over quarters still in that day finds the transition itself.
    start = datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)
    while (start - QUARTER).astimezone(tz).date() == day:
        start -= QUARTER
    return start


def local_start(moment: datetime, tz: ZoneInfo, unit: TimeBucket) -> datetime:
    """Start (as a UTC instant) of the local hour, day, ISO week (Monday) or month that holds a moment.

    Returned in UTC so that the two occurrences of a repeated DST hour stay distinct: aware times in
    one zone compare by wall clock and would merge them.
    """
    if unit is TimeBucket.HOUR:
        # A local hour is a wall-clock hour at one offset: a repeated hour is two, and an hour cut by a
        # gap (Pacific/Chatham springs from 02:45 to 03:45) starts at the transition, not at a wall
        # time that never happened. Transitions fall on quarters, so stepping back over quarters finds it.
        hour = _hour_of(moment, tz)
        start = bucket_start(moment)
        while _hour_of(start - QUARTER, tz) == hour:
            start -= QUARTER
        return start
    day = _utc(moment).astimezone(tz).date()
    if unit is TimeBucket.WEEK:
        day -= timedelta(days=day.weekday())
    elif unit is TimeBucket.MONTH:
        day = day.replace(day=1)
    return _midnight(day, tz)


def _next_start(start: datetime, tz: ZoneInfo, unit: TimeBucket) -> datetime:
    """The local bucket after the one starting at `start` (a UTC instant from local_start)."""
    if unit is TimeBucket.HOUR:
        hour, probe = _hour_of(start, tz), start + QUARTER
        while _hour_of(probe, tz) == hour:
            probe += QUARTER
        return probe
    day = start.astimezone(tz).date()
    if unit is TimeBucket.DAY:
        return _midnight(day + timedelta(days=1), tz)
    if unit is TimeBucket.WEEK:
        return _midnight(day + timedelta(days=7), tz)
    return _midnight(date(day.year + day.month // 12, day.month % 12 + 1, 1), tz)


def local_buckets_between(since: datetime, until: datetime, tz: ZoneInfo, unit: TimeBucket) -> Iterator[datetime]:
    """UTC starts of the local buckets that hold any moment of [since, until], both inclusive."""
    if _utc(until) < _utc(since):
        return
    current, last = local_start(since, tz, unit), local_start(until, tz, unit)
    while current <= last:
        yield current
        current = _next_start(current, tz, unit)


def _checked(start: datetime) -> datetime:
    if bucket_start(start) != _utc(start):
        raise ValueError(f"Not the start of a 15-minute bucket: {start!r}")
    return _utc(start)


def timeseries(counts: Mapping[datetime, int], tz: ZoneInfo, unit: TimeBucket,
               since: datetime | None = None, until: datetime | None = None) -> list[tuple[datetime, int]]:
    """Quarter counts (keyed by UTC bucket start) regrouped into local buckets, oldest first.

    Each point's start is an aware datetime in `tz`. Given a window, every local bucket that
    overlaps it appears, with 0 where nothing ran, and quarters outside it are left out; without
    one, only buckets with counts appear.
    """
    totals: dict[datetime, int] = {}
    low, high = (None, None) if since is None or until is None else (bucket_start(since), bucket_start(until))
    for start, value in counts.items():
        quarter = _checked(start)
        if low is not None and high is not None and not low <= quarter <= high:
            continue
        key = local_start(quarter, tz, unit)
        totals[key] = totals.get(key, 0) + value
    if since is not None and until is not None:
        for key in local_buckets_between(since, until, tz, unit):
            totals.setdefault(key, 0)
    return [(key.astimezone(tz), totals[key]) for key in sorted(totals)]


def by_hour(counts: Mapping[datetime, int], tz: ZoneInfo) -> list[int]:
    """Counts per local hour of day (index 0-23) from quarter counts keyed by UTC bucket start."""
    hours = [0] * 24
    for start, value in counts.items():
        hours[_checked(start).astimezone(tz).hour] += value
    return hours


def quarter_counts(pairs: Iterable[tuple[datetime, int]]) -> dict[datetime, int]:
    """Sum (moment, count) pairs into their 15-minute UTC buckets, e.g. several scopes' items into one."""
    totals: dict[datetime, int] = {}
    for moment, value in pairs:
        key = bucket_start(moment)
        totals[key] = totals.get(key, 0) + value
    return totals
