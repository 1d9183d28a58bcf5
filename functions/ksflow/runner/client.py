"""What a self-hosted ksflow runner needs: verify a dispatch, heartbeat while working, call back.

Standard library only and no ksflow imports, so a runner's author can copy this one file.

    dispatch = verify_dispatch(secret, request_headers, request_body)   # InvalidDispatch: answer its http_status
    reporter = RunReporter(dispatch, secret)
    with reporter.keep_alive(every=30):          # heartbeats in the background, latest progress from update()
        ... do the work, calling reporter.update(progress=40, message="...") and checking reporter.ended ...
    if not reporter.ended.is_set():              # the service answered 409: the run ended or was re-dispatched
        reporter.complete()                      # or reporter.fail("why")

Messages are signed as Standard Webhooks (https://www.standardwebhooks.com) with the runner's
secret: a `whsec_` secret's key is the base64 after the prefix, any other secret's key is its
UTF-8 bytes. A message the service may not have received (network error, timeout, 408, 429,
5xx) is sent again with the same `webhook-id`, so the service can tell it is a repeat.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

__all__ = ["Dispatch", "Headers", "InvalidDispatch", "ReportFailed", "RunEnded", "RunReporter", "post_signed",
           "sign_headers", "verify_dispatch"]

DISPATCH_TYPE = "workflow_run.dispatch"
SECRET_PREFIX = "whsec_"
# Standard Webhooks' replay window: a captured message is useless five minutes later.
TOLERANCE = timedelta(minutes=5)
# A sender rolling its secret signs with two; many more is guessing, not rolling (the service's limit too).
MAX_SIGNATURES = 8
MAX_MESSAGE_CHARS = 1024
MAX_ERROR_CHARS = 8192


def _retryable(status: int) -> bool:
    """Answers that say the service may not have taken the message: worth sending it again."""
    return status in (408, 429) or status >= 500


class InvalidDispatch(Exception):
    """The request is not a dispatch from the service; `http_status` is the answer to give it.

    401 when the signature does not hold (missing headers, stale timestamp, wrong secret,
    changed body), 400 when it is signed but is not a dispatch.
    """

    def __init__(self, reason: str, http_status: int = 401) -> None:
        super().__init__(reason)
        self.http_status = http_status


class ReportFailed(Exception):
    """A heartbeat or callback the service did not accept.

    `status` is the final HTTP answer, or None when the service could not be reached (after
    the retries); `detail` is its reason.
    """

    def __init__(self, message: str, status: int | None, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class RunEnded(ReportFailed):
    """The service answered 409: the run ended (completed, failed, timed out, cancelled) or this
    attempt is no longer the current one. Stop working, and do not call back."""


@dataclass(frozen=True)
class Dispatch:
    """A verified dispatch: the run to work on and where to report about it."""

    run: dict[str, Any]
    run_id: str
    attempt: int
    callback_url: str
    heartbeat_url: str
    deadline: datetime
    message_id: str


class Headers(Protocol):
    """Request headers: a Mapping, or `http.server`'s `self.headers` (an email Message)."""

    def items(self) -> Iterable[tuple[str, str]]: ...


def _key(secret: str) -> bytes:
    if not secret:
        raise ValueError("the webhook secret is empty: anyone could sign with an empty key")
    if secret.startswith(SECRET_PREFIX):
        # As the `standardwebhooks` package decodes it: padding may be left out.
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX) + "==")
    return secret.encode()


def _signature(key: bytes, message_id: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign_headers(secret: str, message_id: str, body: bytes | str, *, now: datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`, signed at `now`."""
    timestamp = str(int((now or datetime.now(UTC)).timestamp()))
    raw = body.encode() if isinstance(body, str) else body
    return {"webhook-id": message_id, "webhook-timestamp": timestamp,
            "webhook-signature": _signature(_key(secret), message_id, timestamp, raw)}


def _check_signature(secret: str, headers: Headers, body: bytes, now: datetime) -> str:
    """The message id of a validly signed, fresh message; raises InvalidDispatch otherwise."""
    lowered = {name.lower(): value for name, value in headers.items()}  # the last of repeated headers
    message_id, timestamp, signatures = (lowered.get(name, "") for name in
                                         ("webhook-id", "webhook-timestamp", "webhook-signature"))
    missing = [name for name, value in (("webhook-id", message_id), ("webhook-timestamp", timestamp),
                                        ("webhook-signature", signatures)) if not value]
    if missing:
        raise InvalidDispatch(f"missing header(s) {', '.join(missing)}")
    try:
        sent = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidDispatch(f"webhook-timestamp {timestamp[:40]!r} is not unix seconds") from None
    if abs(now - sent) > TOLERANCE:
        raise InvalidDispatch(f"webhook-timestamp is {abs(now - sent).total_seconds():.0f}s off the clock "
                              f"(more than {TOLERANCE.total_seconds():.0f}s): a stale or replayed message, "
                              "or a clock that is wrong")
    expected = _signature(_key(secret), message_id, timestamp, body).encode()
    # Each signature is judged on its own, so a malformed one beside a valid one does not spoil it.
    if not any(hmac.compare_digest(candidate.encode(), expected)
               for candidate in signatures.split()[:MAX_SIGNATURES]):
        raise InvalidDispatch("no signature matches: signed with another secret, or the body was changed")
    return message_id


def _heartbeat_url(callback_url: str) -> str:
    """Older services send no heartbeat URL: it is the callback URL's sibling."""
    base, question, query = callback_url.partition("?")
    head, slash, last = base.rpartition("/")
    path = f"{head}/heartbeat" if slash and last == "callback" else f"{base}/heartbeat"
    return f"{path}{question}{query}"


def verify_dispatch(secret: str, headers: Headers, body: bytes | str, *,
                    now: datetime | None = None) -> Dispatch:
    """Check the request's signature and read the dispatch it carries.

    Verify before acting on anything in the body: anyone who can reach the runner can send it
    a request, only the service knows the secret. Header names are matched case-insensitively.
    """
    raw = body.encode() if isinstance(body, str) else body
    message_id = _check_signature(secret, headers, raw, now or datetime.now(UTC))
    try:
        payload = json.loads(raw)
        if not isinstance(payload, dict):
            raise TypeError("not a JSON object")
        if payload.get("type", DISPATCH_TYPE) != DISPATCH_TYPE:
            raise ValueError(f"type is {str(payload['type'])[:80]!r}")
        run, callback_url = payload["run"], payload["callback_url"]
        if not (isinstance(run, dict) and isinstance(run.get("id"), str) and isinstance(callback_url, str)):
            raise TypeError("run.id and callback_url must be strings")
        attempt = payload.get("attempt", 1)
        if isinstance(attempt, bool) or not isinstance(attempt, int):
            raise TypeError("attempt must be an integer")
        heartbeat_url = payload.get("heartbeat_url") or _heartbeat_url(callback_url)
        if not isinstance(heartbeat_url, str):
            raise TypeError("heartbeat_url must be a string")
        deadline = datetime.fromisoformat(payload["deadline"])
    except (ValueError, TypeError, KeyError) as error:
        detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
        raise InvalidDispatch(f"signed, but not a {DISPATCH_TYPE}: {detail}", 400) from None
    return Dispatch(run=run, run_id=run["id"], attempt=attempt, callback_url=callback_url,
                    heartbeat_url=heartbeat_url, message_id=message_id,
                    deadline=deadline if deadline.tzinfo else deadline.replace(tzinfo=UTC))


def _detail(raw: bytes) -> str:
    """The service's reason: the `detail` of a JSON error, else the start of the text."""
    try:
        detail = json.loads(raw).get("detail")
        if detail is not None:
            return detail if isinstance(detail, str) else json.dumps(detail)[:500]
    except (ValueError, AttributeError):
        pass
    return raw.decode(errors="replace")[:500]


def post_signed(url: str, secret: str, payload: Mapping[str, Any], *, deadline: datetime | None = None,
                timeout: float = 10.0, attempts: int = 5, first_backoff: float = 0.5,
                stop: threading.Event | None = None) -> dict[str, Any]:
    """POST `payload` signed; return the JSON of a 2xx answer.

    Sent again (same `webhook-id` and body, fresh signature) after a network error, timeout,
    408, 429 or 5xx, waiting `first_backoff` seconds and doubling, at most `attempts` times in
    all and never past `deadline`; setting `stop` gives up the waiting. Raises RunEnded on 409,
    ReportFailed on any other final answer or when the service stayed unreachable.
    """
    body = json.dumps(dict(payload), separators=(",", ":")).encode()
    message_id = f"msg_{uuid.uuid4().hex}"
    stop = stop or threading.Event()
    backoff, attempt = first_backoff, 0
    while True:
        attempt += 1
        headers = {"Content-Type": "application/json", **sign_headers(secret, message_id, body)}
        # The URL comes from a verified dispatch, or from the runner's own configuration.
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                raw = response.read()
            try:
                answer = json.loads(raw) if raw else {}
            except ValueError:
                answer = {}
            return answer if isinstance(answer, dict) else {}
        except urllib.error.HTTPError as refused:
            try:
                detail = _detail(refused.read())
            except (OSError, http.client.HTTPException):
                detail = ""
            finally:
                refused.close()
            message = f"POST {url} answered HTTP {refused.code}: {detail}"
            if refused.code == 409:
                raise RunEnded(message, 409, detail) from None
            failure = ReportFailed(message, refused.code, detail)
            if not _retryable(refused.code):
                raise failure from None
        except (OSError, http.client.HTTPException) as error:
            failure = ReportFailed(f"POST {url} failed: {error!r}", None, repr(error))
        out_of_time = deadline is not None and datetime.now(UTC) + timedelta(seconds=backoff) >= deadline
        if attempt >= attempts or out_of_time or stop.wait(backoff):
            raise failure
        backoff *= 2


class RunReporter:
    """Heartbeats and the callback for one dispatch.

    `ended` is set once the service answered 409 to any of them: the run is over for this
    attempt, so the work should stop and no callback is due.
    """

    def __init__(self, dispatch: Dispatch, secret: str, *, timeout: float = 10.0, attempts: int = 5,
                 first_backoff: float = 0.5) -> None:
        self.dispatch = dispatch
        self.ended = threading.Event()
        # Why the last heartbeat failed: RunEnded on 409; otherwise the work goes on (heartbeats are advisory).
        self.heartbeat_error: ReportFailed | None = None
        self._secret = secret
        self._options: dict[str, Any] = {"timeout": timeout, "attempts": attempts, "first_backoff": first_backoff}
        self._latest: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _post(self, url: str, payload: Mapping[str, Any], stop: threading.Event | None = None) -> str:
        try:
            answer = post_signed(url, self._secret, payload, deadline=self.dispatch.deadline, stop=stop,
                                 **self._options)
        except ReportFailed as failure:
            if url == self.dispatch.heartbeat_url:
                self.heartbeat_error = failure  # before `ended` is set, so whoever waits on it finds the reason
            if isinstance(failure, RunEnded):
                self.ended.set()
            raise
        return str(answer.get("status", ""))

    def update(self, progress: float | None = None, message: str | None = None) -> None:
        """Record the latest progress (0-100) and/or message; the next heartbeat reports them."""
        if progress is not None and (isinstance(progress, bool) or not 0 <= progress <= 100):
            raise ValueError(f"progress must be a number from 0 to 100, not {progress!r}")
        with self._lock:
            if progress is not None:
                self._latest["progress"] = progress
            if message is not None:
                self._latest["message"] = message[:MAX_MESSAGE_CHARS]

    def heartbeat(self, progress: float | None = None, message: str | None = None) -> str:
        """Tell the service the run is still being worked on; return the run's status.

        Progress and message given become the latest; those left out repeat the latest.
        Raises RunEnded on 409.
        """
        self.update(progress, message)
        return self._heartbeat()

    def _heartbeat(self, stop: threading.Event | None = None) -> str:
        with self._lock:
            payload = dict(self._latest)
        return self._post(self.dispatch.heartbeat_url, payload, stop)

    def complete(self) -> str:
        """Report the run COMPLETED; return its status. Raises RunEnded on 409."""
        return self._post(self.dispatch.callback_url, {"status": "COMPLETED"})

    def fail(self, error: str) -> str:
        """Report the run FAILED with `error` (cut to 8192 characters); return its status. Raises RunEnded on 409."""
        return self._post(self.dispatch.callback_url, {"status": "FAILED", "error": error[:MAX_ERROR_CHARS]})

    @contextmanager
    def keep_alive(self, every: float) -> Iterator[RunReporter]:
        """Heartbeat now and then every `every` seconds in a background thread while the block runs.

        Each heartbeat reports the latest `update()`. On 409 the heartbeats stop and `ended` is
        set: check it (or wait on it) in the work. Failures are kept in `heartbeat_error`; a final
        one (such as 404 from a service without heartbeats) stops the heartbeats too, nothing else.
        Leaving the block stops them before it returns, so none can follow the callback.
        """
        if every <= 0:
            raise ValueError("every must be a positive number of seconds")
        stop = threading.Event()

        def beat() -> None:
            while not stop.is_set() and not self.ended.is_set():
                try:
                    self._heartbeat(stop)
                except RunEnded:
                    return
                except ReportFailed as failure:
                    if failure.status is not None and not _retryable(failure.status):
                        return
                stop.wait(every)

        thread = threading.Thread(target=beat, name=f"heartbeat-{self.dispatch.run_id}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()

