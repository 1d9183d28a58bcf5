"""Recurrence rules of scheduled definitions, as EventBridge Scheduler applies them.

The cron expression handed to Scheduler and the occurrences computed here (for `next_run_at`
and the local stack's emulator) come from one parsed `Recurrence`, so they cannot disagree.
Daylight saving time follows Scheduler: a local time that does not exist on a day is skipped
and a repeated one fires once, at its first instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Cadence(StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"


# Every month has these days, so a MONTHLY schedule never silently skips a month.
LAST_MONTHLY_DAY = 28
_CRON_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")  # indexed by date.weekday()
# Longest gap between matching days (a month), plus the days a skipped DST time can add.
_SEARCH_DAYS = 64


@dataclass(frozen=True)
class Recurrence:
    """The local wall time and, for WEEKLY and MONTHLY, the day a schedule fires on."""

    cadence: Cadence
    at: time
    weekday: int | None = None
    day_of_month: int | None = None

    @classmethod
    def starting(cls, cadence: Cadence | str, start_local: datetime) -> Recurrence:
        """The recurrence whose first occurrence is `start_local` (wall time in the schedule's zone)."""
        cadence = Cadence(cadence)
        at = time(start_local.hour, start_local.minute)
        if cadence is Cadence.WEEKLY:
            return cls(cadence, at, weekday=start_local.weekday())
        if cadence is Cadence.MONTHLY:
            if start_local.day > LAST_MONTHLY_DAY:
                raise ValueError(f"a MONTHLY schedule must start on day 1-{LAST_MONTHLY_DAY} of the month")
            return cls(cadence, at, day_of_month=start_local.day)
        return cls(cadence, at)

    def cron(self) -> str:
        """EventBridge `cron(minutes hours day-of-month month day-of-week year)`."""
        fields = f"{self.at.minute} {self.at.hour}"
        if self.weekday is not None:
            return f"cron({fields} ? * {_CRON_WEEKDAYS[self.weekday]} *)"
        if self.day_of_month is not None:
            return f"cron({fields} {self.day_of_month} * ? *)"
        return f"cron({fields} * * ? *)"

    def fires_on(self, day: date) -> bool:
        if self.weekday is not None:
            return day.weekday() == self.weekday
        if self.day_of_month is not None:
            return day.day == self.day_of_month
        return True

    def occurrence_on(self, day: date, zone: ZoneInfo) -> datetime | None:
        """The instant (UTC) it fires on that local day; None when that wall time does not exist."""
        if not self.fires_on(day):
            return None
        local = datetime.combine(day, self.at, tzinfo=zone)  # fold=0: the first of a repeated time
        return local.astimezone(UTC) if wall_time_exists(local) else None


def wall_time_exists(local: datetime) -> bool:
    """False for a wall time that a spring-forward transition skips in its zone."""
    return local.astimezone(UTC).astimezone(local.tzinfo).replace(tzinfo=None) == local.replace(tzinfo=None)


def cron_expression(cadence: Cadence | str, start_local: datetime) -> str:
    return Recurrence.starting(cadence, start_local).cron()


def localize(start: datetime, timezone: str) -> datetime:
    """`start` as wall time in the zone: aware times are converted, naive ones are taken as wall time."""
    zone = ZoneInfo(timezone)
    if start.tzinfo is None:
        return start.replace(tzinfo=zone)
    return start.astimezone(zone)


def next_occurrence(cadence: Cadence | str, start_local: datetime, timezone: str, after: datetime) -> datetime:
    """The first occurrence (UTC) strictly after `after` and not before the start."""
    zone = ZoneInfo(timezone)
    start = localize(start_local, timezone)
    recurrence = Recurrence.starting(cadence, start)
    earliest = max(after, start.astimezone(UTC) - timedelta(microseconds=1))
    day = earliest.astimezone(zone).date() - timedelta(days=1)
    for _ in range(_SEARCH_DAYS):
        instant = recurrence.occurrence_on(day, zone)
        if instant is not None and instant > earliest:
            return instant
        day += timedelta(days=1)
    raise ValueError(f"no occurrence of {recurrence.cron()} within {_SEARCH_DAYS} days")  # pragma: no cover
