"""`ksflow example-runner`: a self-hosted runner that shows the protocol end to end.

It verifies each dispatch's Standard Webhooks signature with `ksflow.runner.client`, answers
202 at once, does the run's work and then calls the run's callback URL, signed with the same
secret: COMPLETED, or FAILED with the reason. With `heartbeat_every` it heartbeats while it
works, reporting its progress; when the service answers a heartbeat with 409 (the run ended,
or a newer attempt took over) it stops and does not call back.

The work needs an API key, of a user its operator granted READ_ONLY on the sources and
READ_WRITE on the outputs. For each source document (a source folder's documents, or a
source document) it reads the opening of its active version's text through the contents
endpoint, and it writes `summary-<run id>.md`, holding each source's title and first lines,
into the first output folder with the upload endpoint. Without an API key it only waits
`delay` seconds before calling back.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ksflow.runner import client


def send_callback(callback_url: str, secret: str, status: str, error: str | None) -> int:
    """Call back once (retrying what may not have arrived); the HTTP status of the answer.

    Raises `client.ReportFailed` when the API could not be reached at all.
    """
    try:
        client.post_signed(callback_url, secret, {"status": status, **({"error": error} if error else {})})
    except client.ReportFailed as refused:
        if refused.status is None:
            raise
        return refused.status
    return 200


def _for_run(raw: str) -> str:
    """` for run <id>` when an unverified dispatch names a well-formed run id: the log says which run's
    definition holds a different secret, and nothing but a UUID from the sender reaches the log."""
    try:
        return f" for run {uuid.UUID(json.loads(raw)['run']['id'])}"
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""


FIRST_LINES = 3


@dataclass(frozen=True)
class KnowledgeBase:
    """The few API calls the runner makes, as the user whose API key it holds."""

    api_url: str
    api_key: str

    def _call(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if content_type:
            headers["Content-Type"] = content_type
        # The API URL is the operator's, or the origin of a dispatch whose signature was verified.
        request = urllib.request.Request(self.api_url + path, data=body, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as failure:
            raise RuntimeError(f"{method} {path} answered HTTP {failure.code}: {failure.read().decode()}") from None

    def get(self, path: str, **query: Any) -> Any:
        return self._call("GET", f"{path}?{urllib.parse.urlencode(query)}" if query else path)

    def documents_of(self, source: dict[str, Any]) -> list[dict[str, Any]]:
        """A source folder's documents (page by page), or the source document itself."""
        if source["part_type"] != "FOLDER":
            document_id = self.get(f"/v1/path-parts/{source['path_part_id']}")["metadata_obj_id"]
            return [self.get(f"/v1/documents/{document_id}")]
        found: list[dict[str, Any]] = []
        while True:
            page = self.get("/v1/documents", parent_path_part_id=source["path_part_id"], limit=100,
                            offset=len(found))
            found += page["items"]
            if not page["items"] or len(found) >= page["total"]:
                return found

    def first_lines(self, version_id: str) -> list[str]:
        """The first non-blank lines of the version's text: they are in its first chunk."""
        page = self.get(f"/v1/document_versions/{version_id}/contents", content_type="CHUNK", limit=1)
        text = page["items"][0]["content"] if page["items"] else ""
        return [line for line in text.splitlines() if line.strip()][:FIRST_LINES]

    def upload(self, folder_path_part_id: str, name: str, text: str) -> Any:
        """`POST /v1/documents/ingest`, multipart as a browser form sends it."""
        boundary = uuid.uuid4().hex
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="path_part_id"\r\n\r\n'
                f"{folder_path_part_id}\r\n"
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                f"Content-Type: text/markdown\r\n\r\n{text}\r\n--{boundary}--\r\n").encode()
        return self._call("POST", "/v1/documents/ingest", body, f"multipart/form-data; boundary={boundary}")


def summarize(knowledge: KnowledgeBase, run: dict[str, Any],
              progress: Callable[[int, str], None] = lambda percent, message: None) -> str:
    """Write the run's summary document into its first output folder; return the document's name.

    `progress` hears of each step (percent done, what is next), and may raise to stop the work.
    """
    snapshot = run["run_snapshot"]
    sections = [f"# {snapshot['workflow_name']}: run {run['id']}"]
    progress(0, "listing the sources")
    documents = [document for source in snapshot["sources"] for document in knowledge.documents_of(source)]
    steps = len(documents) + 1
    for done, document in enumerate(documents):
        progress(100 * done // steps, f"reading {document['name']}")
        lines = knowledge.first_lines(document["active_version_id"]) or ["(no text: not ingested yet)"]
        sections.append("\n".join([f"## {document['name']}", "", *lines]))
    name = f"summary-{run['id']}.md"
    progress(100 * len(documents) // steps, f"writing {name}")
    knowledge.upload(snapshot["outputs"][0]["path_part_id"], name, "\n\n".join(sections) + "\n")
    return name


def api_origin(callback_url: str) -> str:
    """The API that sent a dispatch is where its callback URL points."""
    return callback_url.split("/v1/", 1)[0]


class Stopped(Exception):
    """The service answered a heartbeat with 409: the run is over for this attempt."""


def make_server(host: str, port: int, secret: str, *, delay: float, fail: bool, api_key: str | None = None,
                api_url: str | None = None, log: Any = print, heartbeat_every: float = 0) -> ThreadingHTTPServer:
    """A runner on (host, port); `heartbeat_every` seconds between heartbeats while it works (0: none)."""
    if heartbeat_every < 0:
        raise ValueError("heartbeat_every must be 0 (no heartbeats) or a positive number of seconds")

    class RunnerHandler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Only the runner's own lines are printed."""

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                dispatch = client.verify_dispatch(secret, self.headers, raw)
            except client.InvalidDispatch as error:
                hint = ("; is --secret the webhook_secret of the definition's runner_config?"
                        if error.http_status == 401 else "")
                log(f"rejected dispatch{_for_run(raw.decode(errors='replace'))}: {error}{hint}")
                self._answer(error.http_status, {"detail": "invalid signature" if error.http_status == 401
                                                 else "not a workflow run dispatch"})
                return
            workflow = (dispatch.run.get("run_snapshot") or {}).get("workflow_name")
            log(f"accepted run {dispatch.run_id} ({workflow})")
            self._answer(202, {"accepted": True})
            threading.Thread(target=finish, args=(dispatch,), daemon=True).start()

    def check(reporter: client.RunReporter) -> None:
        if reporter.ended.is_set():
            raise Stopped

    def wait(reporter: client.RunReporter, outcome: str) -> None:
        """Sleep `delay` seconds; with heartbeats, keep the progress they report current."""
        if not heartbeat_every:
            time.sleep(delay)
            return
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < delay:
            reporter.update(progress=min(100, int(100 * elapsed / delay)),
                            message=f"waiting {delay:g}s before reporting {outcome}")
            if reporter.ended.wait(min(heartbeat_every / 2, delay - elapsed)):
                raise Stopped

    def work(reporter: client.RunReporter) -> tuple[str, str | None]:
        if fail or not api_key:
            wait(reporter, "FAILED" if fail else "COMPLETED")
            return ("FAILED", "Example runner was asked to fail") if fail else ("COMPLETED", None)

        def progress(percent: int, message: str) -> None:
            check(reporter)
            reporter.update(progress=percent, message=message)

        knowledge = KnowledgeBase(api_url or api_origin(reporter.dispatch.callback_url), api_key)
        try:
            written = summarize(knowledge, reporter.dispatch.run, progress)
        except (OSError, ValueError, LookupError, RuntimeError) as error:
            return "FAILED", f"Example runner could not summarize the sources: {error}"[:8192]
        log(f"wrote {written} for run {reporter.dispatch.run_id}")
        return "COMPLETED", None

    def finish(dispatch: client.Dispatch) -> None:
        reporter = client.RunReporter(dispatch, secret)
        reporter.update(progress=0, message="started")
        keeping: AbstractContextManager[Any] = (
            reporter.keep_alive(every=heartbeat_every) if heartbeat_every else nullcontext())
        try:
            with keeping:
                status, error = work(reporter)
            check(reporter)
        except Stopped:
            log(f"stopped run {dispatch.run_id} without calling back: {reporter.heartbeat_error}")
            return
        try:
            if error is None:
                reporter.complete()
            else:
                reporter.fail(error)
            answer = "HTTP 200"
        except client.ReportFailed as refused:
            if refused.status is None:
                log(f"could not report {status} for run {dispatch.run_id}: {refused}")
                return
            answer = f"HTTP {refused.status} ({refused.detail})"
        log(f"reported {status} for run {dispatch.run_id}: {answer}" + (f" ({error})" if error else ""))

    return ThreadingHTTPServer((host, port), RunnerHandler)


def serve(host: str, port: int, secret: str, *, delay: float, fail: bool, api_key: str | None = None,
          api_url: str | None = None, heartbeat_every: float = 0) -> None:
    server = make_server(host, port, secret, delay=delay, fail=fail, api_key=api_key, api_url=api_url,
                         heartbeat_every=heartbeat_every)
    if fail or not api_key:
        doing = f"reports {'FAILED' if fail else 'COMPLETED'} after {delay:g}s"
    else:
        where = api_url or "the origin of each dispatch's callback URL"
        doing = f"summarizes each run's sources with the API at {where}"
    if heartbeat_every:
        doing += f", heartbeating every {heartbeat_every:g}s"
    print(f"example runner listening on http://{host}:{port}/ ({doing})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
