"""A complete self-hosted runner: verify the dispatch, answer 202, heartbeat while working, call back."""
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ksflow.runner.client import InvalidDispatch, RunReporter, verify_dispatch

SECRET = os.environ["KSFLOW_WEBHOOK_SECRET"]  # the webhook_secret of the definition's runner_config


def work(reporter: RunReporter) -> None:
    reporter.update(progress=0, message="starting")
    with reporter.keep_alive(every=30):  # a heartbeat now and every 30 s; a 409 sets reporter.ended
        print("working on", reporter.dispatch.run["run_snapshot"]["workflow_name"])  # the work goes here
    if not reporter.ended.is_set():  # the run still waits for this attempt's outcome
        reporter.complete()  # or reporter.fail("what went wrong")


class Runner(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            dispatch = verify_dispatch(SECRET, self.headers, body)
        except InvalidDispatch as invalid:  # 401: not signed by the service; 400: not a dispatch
            return self.send_error(invalid.http_status)
        self.send_response(202)
        self.end_headers()
        threading.Thread(target=work, args=(RunReporter(dispatch, SECRET),)).start()


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8001"))), Runner).serve_forever()
