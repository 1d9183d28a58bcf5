"""A definition's schedule: its validated fields, its next run, and what an occurrence left behind."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel

from ksflow import clock
from ksflow.errors import Invalid
from ksflow.schedules.recurrence import Cadence, Recurrence, localize, next_occurrence, wall_time_exists

# Files in the zone directory that are not IANA zone names; Scheduler refuses them.
_NOT_ZONE_NAMES = frozenset({"localtime", "posixrules", "Factory"})


class ScheduleOverlap(StrEnum):
    """What an occurrence does while the previous scheduled run is still open."""

    SKIP = "SKIP"
    ALLOW = "ALLOW"


class ScheduleError(BaseModel):
    """Why an occurrence made no run: shown on the definition until a later occurrence runs."""

    occurrence: datetime
    at: datetime
    error: str


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONE_NAMES


def check_timezone(name: str) -> str:
    """An IANA zone name; an offset would stop meaning the same wall clock across daylight saving time."""
    if name.startswith(("+", "-")) or name[:1].isdigit():
        raise ValueError("must be an IANA time zone name such as Europe/Berlin, not an offset")
    if name not in _zone_names():
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin")
    return name


class Schedule(BaseModel):
    """A validated recurring schedule; `start_at` is the first occurrence, in UTC, to the minute."""

    cadence: Cadence
    start_at: datetime
    timezone: str
    overlap: ScheduleOverlap

    @property
    def local_start(self) -> datetime:
        return self.start_at.astimezone(ZoneInfo(self.timezone))

    def cron(self) -> str:
        return Recurrence.starting(self.cadence, self.local_start).cron()

    def next_run_after(self, moment: datetime) -> datetime:
        return next_occurrence(self.cadence, self.local_start, self.timezone, moment)


def schedule_from_fields(cadence: Cadence | None, start_at: datetime | None, timezone: str | None,
                         overlap: ScheduleOverlap) -> Schedule | None:
    """The schedule a create or PUT asks for, or None for manual runs only; 422 when it cannot exist.

    A start without an offset is wall time in the zone. One that falls in a daylight saving gap
    is refused: it could never be an occurrence.
    """
    if timezone is not None:
        try:
            check_timezone(timezone)
        except ValueError as error:
            raise Invalid(["body", "schedule_timezone"], str(error), "schedule.timezone") from None
    if cadence is None and start_at is None:
        return None
    if cadence is None:
        raise Invalid(["body", "schedule_cadence"], "schedule_cadence is required with schedule_start_at",
                      "schedule.incomplete")
    if start_at is None:
        raise Invalid(["body", "schedule_start_at"], "schedule_start_at is required with schedule_cadence",
                      "schedule.incomplete")
    zone_name = timezone or "UTC"
    local = localize(start_at, zone_name).replace(second=0, microsecond=0)
    if start_at.tzinfo is None and not wall_time_exists(local):
        raise Invalid(["body", "schedule_start_at"],
                      f"schedule_start_at does not exist in {zone_name} (a daylight saving time gap)",
                      "schedule.nonexistent_time")
    try:
        Recurrence.starting(cadence, local)
    except ValueError as error:
        raise Invalid(["body", "schedule_start_at"], str(error), "schedule.day_of_month") from None
    return Schedule(cadence=cadence, start_at=local.astimezone(UTC), timezone=zone_name, overlap=overlap)


def idempotency_key(occurrence: datetime) -> str:
    """One run per occurrence: a redelivered occurrence finds the run its key made."""
    return "schedule:" + occurrence.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_time(text: str) -> datetime:
    """The occurrence Scheduler puts in the event (`<aws.scheduler.scheduled-time>`), in UTC."""
    return clock.parse(text).astimezone(UTC)
