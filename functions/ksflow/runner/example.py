"""`ksflow example-runner`: a self-hosted runner that shows the protocol end to end.

It verifies each dispatch's Standard Webhooks signature with the `standardwebhooks`
package, answers 202 at once, and after a short delay calls the run's callback URL,
signed with the same secret.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
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


def make_server(host: str, port: int, secret: str, *, delay: float, fail: bool,
                log: Any = print) -> ThreadingHTTPServer:
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
                log(f"rejected dispatch: {error}")
                self._answer(401, {"detail": "invalid signature"})
                return
            run = dispatch["run"]
            log(f"accepted run {run['id']} ({run['run_snapshot']['workflow_name']})")
            self._answer(202, {"accepted": True})
            threading.Thread(target=finish, args=(dispatch["callback_url"], run["id"]), daemon=True).start()

    def finish(callback_url: str, run_id: str) -> None:
        time.sleep(delay)
        status, error = ("FAILED", "Example runner was asked to fail") if fail else ("COMPLETED", None)
        answer = send_callback(callback_url, secret, status, error)
        log(f"reported {status} for run {run_id}: HTTP {answer}")

    return ThreadingHTTPServer((host, port), RunnerHandler)


def serve(host: str, port: int, secret: str, *, delay: float, fail: bool) -> None:
    server = make_server(host, port, secret, delay=delay, fail=fail)
    print(f"example runner listening on http://{host}:{port}/ (reports {'FAILED' if fail else 'COMPLETED'} "
          f"after {delay:g}s)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
