"""A definition's retry policy and what it decides about a failed attempt."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# However the policy multiplies, no retry waits longer than a day.
MAX_BACKOFF_SECONDS = 86400
# Whatever retries it by hand, a run keeps at most this many attempts (each is kept in its item).
MAX_ATTEMPTS = 20


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 1
    backoff_seconds: Annotated[int, Field(ge=1, le=3600)] = 30
    backoff_multiplier: Annotated[float, Field(ge=1, le=10)] = 2

    def backoff_before(self, retry_number: int) -> int:
        """Seconds to wait before the `retry_number`-th retry of a series (1 = the first retry)."""
        seconds = self.backoff_seconds * self.backoff_multiplier ** (retry_number - 1)
        return int(min(seconds, MAX_BACKOFF_SECONDS))


class NextAttempt(BaseModel):
    """The attempt a policy retry starts: its number and times, fixed when the retry is scheduled."""

    attempt: int
    wait_seconds: int
    started_at: datetime
    deadline: datetime


def next_attempt(policy: RetryPolicy | None, attempt: int, series_start: int, time_limit_seconds: int,
                 now: datetime) -> NextAttempt | None:
    """The retry that follows a failed `attempt`, or None when the policy has no attempt left.

    `series_start` is the attempt the current series began with (1, or a retry by hand), so a
    retry by hand gets the policy's attempts afresh.
    """
    if policy is None or attempt >= MAX_ATTEMPTS:
        return None
    number_in_series = attempt - series_start + 1
    if number_in_series >= policy.max_attempts:
        return None
    wait = policy.backoff_before(number_in_series)
    started_at = now + timedelta(seconds=wait)
    return NextAttempt(attempt=attempt + 1, wait_seconds=wait, started_at=started_at,
                       deadline=started_at + timedelta(seconds=time_limit_seconds))
