"""`ksflow runs list|get|events|stop|retry`: the console's run views as terminal tables.

Only the public API is called, with the caller's key, so the commands see and may do exactly what
that key's user may. Times are shown in UTC, ISO 8601 to the second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ksflow.terminal import client as api
from ksflow.terminal.tables import Column, key_values, table
from ksflow.terminal.text import safe_json, visible

STATUSES = ("PENDING", "RUNNING", "COMPLETED", "FAILED")
SORT_FIELDS = ("CREATED_AT", "STARTED_AT", "COMPLETED_AT")
# The widest a definition name or an event detail gets in a table; `get` and `--json` show them whole.
NAME_WIDTH = 28
DETAIL_WIDTH = 100
_TROUBLE = {401: "Not signed in", 403: "Not allowed", 404: "Not found", 409: "Conflict", 422: "Invalid request"}


def _run_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a run id (a UUID), got '{visible(value)}'") from None


def _moment(value: str) -> str:
    """An ISO 8601 time, checked here so a typo is named before any call; the API reads one without an offset
    as UTC."""
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an ISO 8601 time, e.g. 2026-03-30T09:00:00Z") from None
    return value


def _upper(choices: Sequence[str]) -> Callable[[str], str]:
    """Case-insensitive choices: `--status failed` means FAILED."""
    def parse(value: str) -> str:
        if value.upper() not in choices:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}, got '{visible(value)}'")
        return value.upper()
    return parse


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{visible(value)}'") from None
    if number < 0:
        raise argparse.ArgumentTypeError("expected 0 or more")
    return number


def parser() -> argparse.ArgumentParser:
    target = argparse.ArgumentParser(add_help=False)
    where = target.add_argument_group("API")
    where.add_argument("--api-url", help=f"the ksflow API, e.g. https://api.example.com (default: ${api.URL_ENV}, "
                                         "else the local stack started in this directory)")
    where.add_argument("--api-key", help=f"an API key (default: ${api.KEY_ENV}, which is better: other users of "
                                         "the machine can read a flag in the process list; else the local "
                                         "stack's OWNER key when calling the local stack)")
    target.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")

    runs = argparse.ArgumentParser(prog="ksflow runs", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = runs.add_subparsers(dest="action", required=True, metavar="{list,get,events,stop,retry}")
    listing = commands.add_parser("list", parents=[target], help="the tenant's runs, newest first")
    listing.add_argument("--status", action="append", type=_upper(STATUSES), metavar="STATUS",
                         help=f"only runs in this status ({', '.join(STATUSES)}); repeat for several")
    listing.add_argument("--definition-id", type=uuid.UUID, help="only runs of this definition")
    listing.add_argument("--mine", action="store_true", help="only runs you invoked")
    listing.add_argument("--created-after", type=_moment, metavar="TIME",
                         help="created at or after TIME (ISO 8601; UTC without an offset)")
    listing.add_argument("--created-before", type=_moment, metavar="TIME", help="created before TIME")
    listing.add_argument("--sort-by", type=_upper(SORT_FIELDS), metavar="FIELD",
                         help=f"{', '.join(SORT_FIELDS)} (default: CREATED_AT)")
    listing.add_argument("--sort-dir", type=_upper(("ASC", "DESC")), metavar="DIR", help="ASC or DESC (default)")
    listing.add_argument("--limit", type=_count, default=20, help="runs per page, 1 to 100 (default: 20)")
    listing.add_argument("--offset", type=_count, default=0, help="runs to skip (default: 0)")
    one = commands.add_parser("get", parents=[target], help="one run: status, attempts and its snapshot's paths")
    history = commands.add_parser("events", parents=[target], help="a run's history, oldest first")
    history.add_argument("--limit", type=_count, default=100, help="events per page, 1 to 100 (default: 100)")
    history.add_argument("--offset", type=_count, default=0, help="events to skip (default: 0)")
    stop = commands.add_parser("stop", parents=[target], help="stop a PENDING or RUNNING run")
    retry = commands.add_parser("retry", parents=[target], help="start a new attempt of a FAILED run")
    for command in (one, history, stop, retry):
        command.add_argument("run_id", type=_run_id, metavar="RUN_ID")
    return runs


def main(argv: Sequence[str]) -> int:
    """Run one command; returns the exit status, with any failure told on stderr in words, not a traceback."""
    from ksflow.local.stack import CREDENTIALS_FILE

    args = parser().parse_args(argv)
    try:
        target = api.resolve_target(args.api_url, args.api_key, os.environ, CREDENTIALS_FILE)
        print(COMMANDS[args.action](api.Client(target), args))
    except api.ApiError as error:
        print(f"error: {describe(error)}", file=sys.stderr)
        return 1
    except api.TerminalError as error:
        print(f"error: {visible(error)}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `ksflow runs list | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exiting flushes nowhere, quietly
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def describe(error: api.ApiError) -> str:
    """The API's `detail` in words; a 422's list one line per offending parameter, named as its flag."""
    trouble = f"{_TROUBLE.get(error.status, 'The API answered')} ({error.status})"
    if error.status == 401:
        return f"{trouble}: {visible(error.detail)}. Check --api-key or ${api.KEY_ENV}."
    if isinstance(error.detail, list):
        return "\n".join([f"{trouble}:", *(f"  {_invalid(item)}" for item in error.detail)])
    return f"{trouble}: {visible(error.detail)}"


def _invalid(item: object) -> str:
    """`--flag: message` for a query parameter, `body.field: message` otherwise."""
    if not isinstance(item, dict):
        return visible(item)
    location = [str(part) for part in item.get("loc") or []]
    if len(location) == 2 and location[0] == "query":
        where = "--" + location[1].replace("_", "-")
    else:
        where = ".".join(location) or "request"
    return f"{visible(where)}: {visible(item.get('msg'))}"


def list_runs(client: api.Client, args: argparse.Namespace) -> str:
    page = client.get("/v1/workflow-runs", {
        "status": args.status, "definition_id": str(args.definition_id) if args.definition_id else None,
        "mine": True if args.mine else None, "created_after": args.created_after,
        "created_before": args.created_before, "sort_by": args.sort_by, "sort_dir": args.sort_dir,
        "limit": args.limit, "offset": args.offset})
    if args.json:
        return safe_json(page)
    columns = [Column("RUN"), Column("DEFINITION", NAME_WIDTH), Column("STATUS"), Column("ATTEMPT"),
               Column("PROGRESS"), Column("CREATED"), Column("DURATION"), Column("ERROR")]
    rows = [[run["id"], run["run_snapshot"]["workflow_name"], run["status"], run["attempt"], _progress(run),
             _time(run["created_at"]), _duration(run["started_at"], run["completed_at"]), run["error"]]
            for run in page["items"]]
    return (table(columns, rows, _terminal_width()) if rows else "No runs match.") + "\n" + _shown(page, "runs")


def get_run(client: api.Client, args: argparse.Namespace) -> str:
    run = client.get(f"/v1/workflow-runs/{args.run_id}")
    if args.json:
        return safe_json(run)
    snapshot = run["run_snapshot"]
    about = key_values([
        ("Run", run["id"]), ("Definition", f"{snapshot['workflow_name']} ({run['workflow_definition_id']})"),
        ("Status", run["status"]), ("Attempt", run["attempt"]), ("Progress", _progress(run, with_message=True)),
        ("Trigger", run["trigger"] + (f" for {_time(run['scheduled_for'])}" if run.get("scheduled_for") else "")),
        ("Invoked by", run["invoked_by"]), ("Created", _time(run["created_at"])),
        ("Started", _time(run["started_at"])), ("Completed", _time(run["completed_at"])),
        ("Duration", _duration(run["started_at"], run["completed_at"])),
        ("Last heartbeat", _time(run.get("last_heartbeat_at"))),
        ("Time limit", f"{snapshot['max_run_duration_seconds']}s"), ("Error", run["error"]),
        ("Workflow id", run["workflow_id"])])
    attempts = [[item["attempt"], item["status"], _time(item["started_at"]), _time(item["completed_at"]),
                 _duration(item["started_at"], item["completed_at"]), item["error"]] for item in run["attempts"]]
    attempts.append([f"{run['attempt']} (current)", run["status"], _time(run["started_at"]),
                     _time(run["completed_at"]), _duration(run["started_at"], run["completed_at"]), run["error"]])
    attempt_columns = [Column("ATTEMPT"), Column("STATUS"), Column("STARTED"), Column("COMPLETED"), Column("DURATION"),
                       Column("ERROR")]
    paths = [[role, part["materialized_path"], part["part_type"], part["path_part_id"]]
             for role, part in _snapshot_paths(snapshot)]
    path_columns = [Column("ROLE"), Column("PATH"), Column("TYPE"), Column("PATH PART")]
    return "\n\n".join([about, "Attempts\n" + table(attempt_columns, attempts, _terminal_width()),
                        "Snapshot (paths frozen when the run was invoked)\n" + table(path_columns, paths)])


def _snapshot_paths(snapshot: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [(role, part) for role, key in (("source", "sources"), ("instruction", "instructions"),
                                            ("output", "outputs")) for part in snapshot.get(key) or []]
    return found + ([("template", snapshot["template"])] if snapshot.get("template") else [])


def list_events(client: api.Client, args: argparse.Namespace) -> str:
    page = client.get(f"/v1/workflow-runs/{args.run_id}/events", {"limit": args.limit, "offset": args.offset})
    if args.json:
        return safe_json(page)
    columns = [Column("TIME"), Column("ATTEMPT"), Column("TYPE"), Column("DETAIL", DETAIL_WIDTH)]
    rows = [[_time(event["at"]), event["attempt"], event["type"], event_detail(event)] for event in page["items"]]
    return (table(columns, rows, _terminal_width()) if rows else "No events.") + "\n" + _shown(page, "events")


def event_detail(event: dict[str, Any]) -> str:
    """One line about an event, from its `detail`: a dispatch's HTTP status and time, a failure's reason."""
    detail, kind = dict(event.get("detail") or {}), event.get("type")
    if kind == "dispatch_attempt":
        answer = f"HTTP {detail.pop('status')}" if detail.get("status") is not None else "no answer"
        took = f" in {detail.pop('duration_ms')} ms" if "duration_ms" in detail else ""
        error = f": {detail.pop('error')}" if detail.get("error") else ""
        return _with_rest(f"{answer}{took}{error}", detail)
    if kind == "failed":
        reason = f"reason {detail.pop('reason', 'unknown')}"
        error = f": {detail.pop('error')}" if detail.get("error") else ""
        retrying = " (a retry follows)" if detail.pop("retrying", False) else ""
        return _with_rest(f"{reason}{error}{retrying}", detail)
    if kind == "callback":
        reported = f"{detail.pop('status', '?')} by {detail.pop('authenticated_by', '?')}"
        error = f": {detail.pop('error')}" if detail.get("error") else ""
        return _with_rest(f"{reported}{error}", detail)
    if kind == "heartbeat" and "progress" in detail:
        message = f" {detail.pop('message')}" if detail.get("message") else ""
        return _with_rest(f"{detail.pop('progress')}%{message}", detail)
    return _with_rest("", detail)


def _with_rest(text: str, rest: dict[str, Any]) -> str:
    """`text` then any other fields as `name=value`, so a field added later is still shown."""
    extra = " ".join(f"{name}={value}" for name, value in sorted(rest.items()))
    return f"{text} {extra}".strip() if extra else text


def run_action(client: api.Client, args: argparse.Namespace) -> str:
    """`stop` or `retry`, as named on the command line: both answer the run as it now is."""
    run = client.post(f"/v1/workflow-runs/{args.run_id}/{args.action}")
    return safe_json(run) if args.json else status_line(run)


def status_line(run: dict[str, Any]) -> str:
    error = f": {visible(run['error'])}" if run.get("error") else ""
    return f"Run {run['id']} {run['status']} (attempt {run['attempt']}){error}"


COMMANDS: dict[str, Callable[[api.Client, argparse.Namespace], str]] = {
    "list": list_runs, "get": get_run, "events": list_events, "stop": run_action, "retry": run_action}


def _shown(page: dict[str, Any], noun: str) -> str:
    """Which part of a `{items, total, offset}` page is on screen."""
    shown = f"{len(page['items'])} of {page['total']} {noun}"
    return shown + (f", from offset {page['offset']}" if page["offset"] else "")


def _time(value: str | None) -> str:
    """UTC, to the second: `2026-03-30T09:00:05Z`."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return visible(value)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(started: str | None, completed: str | None) -> str:
    """How long an ended attempt took; `-` while it is open."""
    if not started or not completed:
        return "-"
    try:
        seconds = (datetime.fromisoformat(completed) - datetime.fromisoformat(started)).total_seconds()
    except (ValueError, TypeError):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, second = divmod(round(seconds), 60)
    return f"{minutes}m{second:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _progress(run: dict[str, Any], with_message: bool = False) -> str:
    if run.get("progress") is None:
        return "-"
    message = run.get("progress_message")
    return f"{run['progress']}%" + (f" {message}" if with_message and message else "")


def _terminal_width() -> int:
    """The terminal's width ($COLUMNS when set); 120 when printing to a pipe or file."""
    return shutil.get_terminal_size((120, 24)).columns
