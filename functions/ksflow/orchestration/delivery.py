"""One dispatch attempt: check the runner's address, then POST the signed run to exactly it.

Each attempt resolves the runner's host afresh, checks every address and connects to the
first (`runner_url.pin`), with TLS verified and SNI sent for the URL's host name. Network
errors, timeouts, 408, 429 and 5xx are worth another attempt; any other answer is final.
Redirects are never followed, so a runner cannot bounce the service to another address.
When to try again is the state machine's business, not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass

import urllib3

from ksflow.workflows import runner_url

RETRYABLE_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
CONNECT_TIMEOUT_SECONDS = 5.0
ATTEMPT_TIMEOUT = urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=10.0)


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    retryable: bool = False
    error: str = ""
    # The runner's HTTP status; None when no answer came.
    status: int | None = None


def connection_pool(target: runner_url.PinnedUrl) -> urllib3.HTTPConnectionPool:
    """A pool that connects to the pinned address only, never resolving the host name again."""
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(target.address, target.port, server_hostname=target.host,
                                           assert_hostname=target.host, cert_reqs="CERT_REQUIRED",
                                           retries=False, timeout=ATTEMPT_TIMEOUT)
    return urllib3.HTTPConnectionPool(target.address, target.port, retries=False, timeout=ATTEMPT_TIMEOUT)


def deliver(url: str, body: bytes, headers: dict[str, str], *, allow_loopback: bool) -> Outcome:
    """POST once; the outcome says whether the runner accepted and whether trying again may help."""
    try:
        target = runner_url.pin(url, allow_loopback=allow_loopback)
    except runner_url.UnresolvedRunnerHost as error:
        return Outcome(False, retryable=True, error=f"Runner unreachable: {error}")
    except runner_url.UnsafeRunnerUrl as error:
        return Outcome(False, error=f"Dispatch refused: {error}")
    try:
        with connection_pool(target) as pool:
            response = pool.urlopen("POST", target.request_target, body=body, redirect=False,
                                    headers={**headers, "Host": target.host_header})
            status = response.status
            response.drain_conn()
    except urllib3.exceptions.HTTPError as failure:
        return Outcome(False, retryable=True, error=f"Runner unreachable: {type(failure).__name__}: {failure}")
    if 200 <= status < 300:
        return Outcome(True, status=status)
    return Outcome(False, retryable=status in RETRYABLE_STATUSES, error=f"Runner answered HTTP {status}",
                   status=status)
