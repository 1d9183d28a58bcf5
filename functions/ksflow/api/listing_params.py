"""Query parameters the list endpoints share: sort direction and created/updated time windows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import AfterValidator, BeforeValidator

from ksflow.errors import Invalid


class SortDirection(StrEnum):
    """Client-controlled sort direction for list endpoints."""

    ASC = "ASC"
    DESC = "DESC"


def _utc(moment: datetime) -> datetime:
    """A time without an offset is UTC, as the API's own times are."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _not_a_number(value: object) -> object:
    """pydantic reads a bare number as seconds since 1970; a client sending one almost surely meant something
    else, so only ISO 8601 date-times are taken."""
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        raise ValueError("Expected an ISO 8601 date-time such as 2026-01-31T12:00:00Z, not a number")
    return value


UtcDatetime = Annotated[datetime, BeforeValidator(_not_a_number), AfterValidator(_utc)]

SortDir = Annotated[SortDirection | None, Query(description="Sort direction; overrides the field's natural default")]
CreatedAfter = Annotated[UtcDatetime | None, Query(
    description="Only items created at or after this timestamp (inclusive; UTC without an offset)")]
CreatedBefore = Annotated[UtcDatetime | None, Query(
    description="Only items created strictly before this timestamp (UTC without an offset)")]
UpdatedAfter = Annotated[UtcDatetime | None, Query(
    description="Only items updated at or after this timestamp (inclusive; UTC without an offset)")]
UpdatedBefore = Annotated[UtcDatetime | None, Query(
    description="Only items updated strictly before this timestamp (UTC without an offset)")]


@dataclass(frozen=True)
class DateRange:
    """The created/updated windows of a listing: `*_after` inclusive, `*_before` strict, None unbounded.

    A window whose start is later than its end is a 422 rather than an empty page: it is a mistake.
    """

    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None

    def __post_init__(self) -> None:
        for after, before, name in ((self.created_after, self.created_before, "created"),
                                    (self.updated_after, self.updated_before, "updated")):
            if after is not None and before is not None and after > before:
                raise Invalid(["query", f"{name}_after"], f"{name}_after is later than {name}_before",
                              "value_error")

    def contains(self, created_at: datetime, updated_at: datetime) -> bool:
        return (_within(created_at, self.created_after, self.created_before)
                and _within(updated_at, self.updated_after, self.updated_before))


def _within(moment: datetime, after: datetime | None, before: datetime | None) -> bool:
    return (after is None or moment >= after) and (before is None or moment < before)
