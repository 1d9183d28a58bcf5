"""The local stack's log for a person: one line per API request and per run or ingestion transition.

The handlers log structured records through the Powertools Logger exactly as in Lambda.
Powertools' formatter still gathers each record's keys (the per-run keys included); this
module only renders the gathered record as a line instead of JSON, as the formatter's
`json_serializer`. `--log-format json` leaves Powertools' JSON as it is.

    12:00:01 run 1a2b3c4d… invoked by ana@acme.test
    12:00:01 POST /v1/workflow-definitions/5f…/invoke 202 41 ms
    12:00:02 run 1a2b3c4d… dispatch attempt 1 failed: Runner answered HTTP 503; will be retried
    12:00:03 run 1a2b3c4d… dispatch attempt 2 accepted
    12:00:03 run 1a2b3c4d… RUNNING
    12:00:05 run 1a2b3c4d… COMPLETED (callback)
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable
from typing import IO, Any, Literal

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord

from ksflow.identity import store as identity
from ksflow.observability import SERVICE, logger

LogFormat = Literal["readable", "json"]

# Keys every record carries (the Lambda context, Powertools' own) or that name the record's subject:
# a line shows only what the code that logged it added.
CONTEXT_KEYS = frozenset({
    "level", "location", "message", "timestamp", "service", "sampling_rate", "cold_start", "function_name",
    "function_memory_size", "function_arn", "function_request_id", "correlation_id", "xray_trace_id",
    "exception", "exception_name", "exception_notes", "tenant_id", "run_id", "document_version_id",
})
STYLES = {"dim": "2", "bold": "1", "red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36"}
STATUS_STYLES = {"COMPLETED": "green", "FAILED": "red", "RUNNING": "blue", "completed": "green",
                 "failed": "red", "cancelled": "yellow", "processing": "blue", "pending": "dim"}
LEVEL_STYLES = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "red"}


def default_format(stream: IO[str]) -> LogFormat:
    """Readable on a terminal; JSON when the output goes to a file or another program, which parse it."""
    return "readable" if stream.isatty() else "json"


def colour_wanted(stream: IO[str]) -> bool:
    """Colours on a terminal, unless NO_COLOR is set (no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


@functools.lru_cache(maxsize=256)
def email_of(tenant_id: str, user_id: str) -> str:
    """Who invoked a run, by email: looked up here only, so Lambda's logs keep user ids, not addresses."""
    user = identity.get_user(tenant_id, user_id)
    return str(user["email"]) if user else user_id


def short(identifier: str) -> str:
    return f"{identifier[:8]}…"


class ReadableLines:
    """Renders a record Powertools gathered as one line; numbers each run's dispatch attempts as they come."""

    def __init__(self, colour: bool) -> None:
        self._colour = colour
        self._attempts: Counter[str] = Counter()
        self._attempts_lock = threading.Lock()
        self._describers: dict[str, Callable[[dict[str, Any]], str]] = {
            "API request": self._request,
            "Run invoked": self._invoked,
            "Dispatch accepted": self._accepted,
            "Dispatch will be retried": self._retried,
            "Dispatch failed": self._gave_up,
            "Run is running": self._running,
            "Run ended": self._ended,
            "Ingestion status changed": self._ingestion,
        }

    def __call__(self, record: LogRecord) -> str:
        log: dict[str, Any] = dict(record)
        describe = self._describers.get(str(log.get("message")), self._other)
        line = f"{self._paint(str(log.get('timestamp', '')), 'dim')} {describe(log)}"
        if "exception" in log:
            line += "\n" + str(log["exception"])
        return line

    def _paint(self, text: str, style: str) -> str:
        return f"\x1b[{STYLES[style]}m{text}\x1b[0m" if self._colour else text

    def _status(self, status: str) -> str:
        return self._paint(status, STATUS_STYLES.get(status, "bold"))

    def _run(self, log: dict[str, Any]) -> str:
        return self._paint(f"run {short(str(log['run_id']))}", "cyan")

    def _ingestion_subject(self, log: dict[str, Any]) -> str:
        return self._paint(f"ingestion {short(str(log['document_version_id']))}", "cyan")

    def _attempt(self, log: dict[str, Any]) -> str:
        with self._attempts_lock:
            self._attempts[log["run_id"]] += 1
            number = self._attempts[log["run_id"]]
        return f"{self._run(log)} dispatch attempt {number}"

    def _request(self, log: dict[str, Any]) -> str:
        status = int(log["status"])
        style = "green" if status < 300 else "cyan" if status < 400 else "yellow" if status < 500 else "red"
        return f"{log['method']} {log['path']} {self._paint(str(status), style)} {log['duration_ms']} ms"

    def _invoked(self, log: dict[str, Any]) -> str:
        return f"{self._run(log)} invoked by {email_of(log['tenant_id'], log['user_id'])}"

    def _accepted(self, log: dict[str, Any]) -> str:
        return f"{self._attempt(log)} accepted"

    def _retried(self, log: dict[str, Any]) -> str:
        return f"{self._attempt(log)} {self._paint('failed', 'yellow')}: {log.get('reason')}; will be retried"

    def _gave_up(self, log: dict[str, Any]) -> str:
        return f"{self._attempt(log)} {self._paint('failed', 'red')}: {log.get('reason')}"

    def _running(self, log: dict[str, Any]) -> str:
        return f"{self._run(log)} {self._status('RUNNING')}"

    def _ended(self, log: dict[str, Any]) -> str:
        with self._attempts_lock:
            self._attempts.pop(log["run_id"], None)
        error = f": {log['error']}" if log.get("error") else ""
        return f"{self._run(log)} {self._status(log['status'])} ({log.get('ended_by', 'unknown')}){error}"

    def _ingestion(self, log: dict[str, Any]) -> str:
        status = str(log["status"])
        chunks = log.get("chunks_processed")
        outcome = {"completed": f": {chunks} chunk{'' if chunks == 1 else 's'}", "failed": f": {log.get('error')}"}
        rerun = f" (attempt {log['attempt']})" if status in ("pending", "processing") and log["attempt"] > 1 else ""
        return (f"{self._ingestion_subject(log)} {log.get('file_name')} {self._status(status)}{rerun}"
                f"{outcome.get(status, '')}")

    def _other(self, log: dict[str, Any]) -> str:
        """Any other record: its level when above INFO, its subject, its message and the keys it added."""
        level = str(log.get("level", "INFO"))
        parts = [self._paint(level, LEVEL_STYLES[level])] if level in LEVEL_STYLES else []
        if "run_id" in log:
            parts.append(self._run(log))
        elif "document_version_id" in log:
            parts.append(self._ingestion_subject(log))
        parts.append(str(log.get("message")))
        parts += [f"{key}={value}" for key, value in log.items() if key not in CONTEXT_KEYS]
        return " ".join(parts)


def readable_formatter(colour: bool) -> LambdaPowertoolsFormatter:
    """Powertools' formatter, gathering each record's keys as in Lambda, writing a line instead of JSON."""
    return LambdaPowertoolsFormatter(json_serializer=ReadableLines(colour), datefmt="%H:%M:%S",
                                     serialize_stacktrace=False, service=SERVICE)


def install(log_format: LogFormat | None) -> None:
    """Print the service's log for a person (`readable`) or keep Powertools' JSON lines (`json`).

    None picks by stdout: readable on a terminal. Only the formatter changes; the handler,
    and the keys that handlers append and clear, stay Powertools'.
    """
    if (log_format or default_format(sys.stdout)) == "readable":
        logger.registered_handler.setFormatter(readable_formatter(colour_wanted(sys.stdout)))
