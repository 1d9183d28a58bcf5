"""`ksflow example-runner`: a self-hosted runner that shows the protocol end to end.

It verifies each dispatch's Standard Webhooks signature with the `standardwebhooks`
package, answers 202 at once, does the run's work and then calls the run's callback URL,
signed with the same secret: COMPLETED, or FAILED with the reason.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def webhook_for(secret: str) -> Webhook:
    """The contract's key rule: `whsec_` secrets are base64, anything else is used as UTF-8 bytes."""
    return Webhook(secret if secret.startswith("whsec_") else secret.encode())


def send_callback(callback_url: str, secret: str, status: str, error: str | None) -> int:
    body = json.dumps({"status": status, **({"error": error} if error else {})})
    message_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    # The callback URL comes from a dispatch whose signature was verified.
    request = urllib.request.Request(callback_url, data=body.encode(), method="POST", headers={  # noqa: S310
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhook_for(secret).sign(message_id, now, body),
    })
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as failure:
        return int(failure.code)


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


def summarize(knowledge: KnowledgeBase, run: dict[str, Any]) -> str:
    """Write the run's summary document into its first output folder; return the document's name."""
    snapshot = run["run_snapshot"]
    sections = [f"# {snapshot['workflow_name']}: run {run['id']}"]
    for source in snapshot["sources"]:
        for document in knowledge.documents_of(source):
            lines = knowledge.first_lines(document["active_version_id"]) or ["(no text: not ingested yet)"]
            sections.append("\n".join([f"## {document['name']}", "", *lines]))
    name = f"summary-{run['id']}.md"
    knowledge.upload(snapshot["outputs"][0]["path_part_id"], name, "\n\n".join(sections) + "\n")
    return name


def api_origin(callback_url: str) -> str:
    """The API that sent a dispatch is where its callback URL points."""
    return callback_url.split("/v1/", 1)[0]


def make_server(host: str, port: int, secret: str, *, delay: float, fail: bool, api_key: str | None = None,
                api_url: str | None = None, log: Any = print) -> ThreadingHTTPServer:
    webhook = webhook_for(secret)

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
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            try:
                dispatch = webhook.verify(raw, dict(self.headers.items()))
            except WebhookVerificationError as error:
                log(f"rejected dispatch{_for_run(raw)}: {error}; "
                    "is --secret the webhook_secret of the definition's runner_config?")
                self._answer(401, {"detail": "invalid signature"})
                return
            run = dispatch["run"]
            log(f"accepted run {run['id']} ({run['run_snapshot']['workflow_name']})")
            self._answer(202, {"accepted": True})
            threading.Thread(target=finish, args=(dispatch["callback_url"], run), daemon=True).start()

    def work(callback_url: str, run: dict[str, Any]) -> tuple[str, str | None]:
        if fail or not api_key:
            time.sleep(delay)
            return ("FAILED", "Example runner was asked to fail") if fail else ("COMPLETED", None)
        try:
            written = summarize(KnowledgeBase(api_url or api_origin(callback_url), api_key), run)
        except (OSError, ValueError, LookupError, RuntimeError) as error:
            return "FAILED", f"Example runner could not summarize the sources: {error}"[:8192]
        log(f"wrote {written} for run {run['id']}")
        return "COMPLETED", None

    def finish(callback_url: str, run: dict[str, Any]) -> None:
        status, error = work(callback_url, run)
        answer = send_callback(callback_url, secret, status, error)
        log(f"reported {status} for run {run['id']}: HTTP {answer}" + (f" ({error})" if error else ""))

    return ThreadingHTTPServer((host, port), RunnerHandler)


def serve(host: str, port: int, secret: str, *, delay: float, fail: bool, api_key: str | None = None,
          api_url: str | None = None) -> None:
    server = make_server(host, port, secret, delay=delay, fail=fail, api_key=api_key, api_url=api_url)
    if fail or not api_key:
        doing = f"reports {'FAILED' if fail else 'COMPLETED'} after {delay:g}s"
    else:
        where = api_url or "the origin of each dispatch's callback URL"
        doing = f"summarizes each run's sources with the API at {where}"
    print(f"example runner listening on http://{host}:{port}/ ({doing})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
