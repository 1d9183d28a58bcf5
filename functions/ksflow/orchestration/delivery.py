"""POSTing a signed dispatch to a runner, retrying what is worth retrying.

Network errors, timeouts, 408, 429 and 5xx are retried with exponential backoff while the
time budget lasts; any other answer is final. Redirects are never followed, so a runner
cannot bounce the service to another address.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import urllib3

RETRYABLE_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
ATTEMPT_TIMEOUT = urllib3.Timeout(connect=5.0, read=10.0)
_http = urllib3.PoolManager(retries=False, timeout=ATTEMPT_TIMEOUT)


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    attempts: int
    error: str | None = None


def _describe(status: int) -> str:
    return f"Runner answered HTTP {status}"


def deliver(url: str, body: bytes, headers_for_attempt: Callable[[], dict[str, str]], *,
            seconds_left: Callable[[], float], base_delay: float = 1.0, max_delay: float = 30.0) -> Outcome:
    """POST until a 2xx, a final answer, or the budget runs out; the budget includes backoff."""
    attempt, delay = 0, base_delay
    while True:
        attempt += 1
        try:
            response = _http.request("POST", url, body=body, headers=headers_for_attempt(), redirect=False)
            status = response.status
            response.drain_conn()
            if 200 <= status < 300:
                return Outcome(True, attempt)
            error = _describe(status)
            if status not in RETRYABLE_STATUSES:
                return Outcome(False, attempt, error)
        except urllib3.exceptions.HTTPError as failure:
            error = f"Runner unreachable: {type(failure).__name__}: {failure}"
        if seconds_left() < delay + ATTEMPT_TIMEOUT.connect_timeout:  # type: ignore[operator]
            return Outcome(False, attempt, f"{error} (gave up after {attempt} attempts)")
        time.sleep(delay)
        delay = min(delay * 2, max_delay)
