"""`ksflow runs`: its tables, how hostile text reaches a terminal, its arguments and where it sends its key."""

from __future__ import annotations

import json
import threading
import unicodedata
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from ksflow.terminal import client as api
from ksflow.terminal import runs
from ksflow.terminal.tables import Column, key_values, table
from ksflow.terminal.text import safe_json, visible, width

HOSTILE = "boom\x1b[2J\x1b]0;pwned\x07\rrewritten\x9b31m\u202etxt.exe\u2028next\u200bhidden\ud800"
RUN_ID = "3f1c2a9e-8d3b-4b5e-9f0a-1c2d3e4f5a6b"


def _raw_controls(text: str) -> list[str]:
    """Characters a terminal would act on or hide rather than show (newlines between lines aside)."""
    return [char for char in text if char != "\n"
            and unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") and char != "\u200d"]


def test_columns_line_up_with_wide_characters_and_emoji() -> None:
    rendered = table([Column("NAME"), Column("STATUS"), Column("ERROR")],
                     [["Summarise policies", "COMPLETED", None], ["政策の要約 📄", "FAILED", "runner said no"],
                      ["café ́", "RUNNING", ""]])
    lines = rendered.splitlines()
    starts = {width(line[:line.index(status)]) for line, status in zip(lines, ("STATUS", "COMPLETED", "FAILED",
                                                                                "RUNNING"), strict=True)}
    assert starts == {len("Summarise policies") + 2}
    assert lines[1].endswith("COMPLETED  -")  # nothing is shown as a dash
    assert all(line == line.rstrip() for line in lines)


def test_long_values_are_cut_with_an_ellipsis_and_lines_fit_the_terminal() -> None:
    rendered = table([Column("RUN"), Column("DEFINITION", 10), Column("ERROR")],
                     [[RUN_ID, "A very long definition name", "x" * 500]], total_width=80)
    row = rendered.splitlines()[1]
    assert "A very lo…" in row and "A very lon" not in row
    assert width(row) == 80 and row.endswith("x…")
    # A terminal too narrow for the fixed columns still shows the start of the last one.
    narrow = table([Column("RUN"), Column("ERROR")], [[RUN_ID, "y" * 50]], total_width=20)
    assert narrow.splitlines()[1].endswith("  " + "y" * 11 + "…")


def test_control_and_bidi_characters_are_shown_escaped_never_raw() -> None:
    shown = visible(HOSTILE)
    assert _raw_controls(shown) == []
    for escape in ("\\x1b[2J", "\\x07", "\\r", "\\x9b31m", "\\u202e", "\\u2028", "\\u200b", "\\ud800"):
        assert escape in shown
    rendered = table([Column("STATUS"), Column("ERROR")], [["FAILED", HOSTILE]])
    assert _raw_controls(rendered) == [] and "\\x1b[2J" in rendered
    assert _raw_controls(key_values([("Error", HOSTILE), ("Definition", "\x1b[31mred")])) == []
    # Every one of the C0 and C1 controls, and DEL.
    every_control = "".join(map(chr, [*range(0x20), 0x7F, *range(0x80, 0xA0)]))
    assert _raw_controls(visible(every_control)) == []
    # Readable text, emoji sequences joined by U+200D included, stays as it is.
    assert visible("Zürich 政策 👩‍💻 ok") == "Zürich 政策 👩‍💻 ok"
    # A shown value stays printable: a lone surrogate would make printing it fail.
    visible(HOSTILE).encode("utf-8")


def test_json_output_parses_back_to_the_same_value_with_nothing_raw() -> None:
    value = {"error": HOSTILE.replace("\ud800", ""), "name": "政策 👩‍💻", "tag": "\U000e0041"}
    printed = safe_json(value)
    assert json.loads(printed) == value
    assert _raw_controls(printed) == []
    assert "政策 👩‍💻" in printed and printed.startswith("{\n  ")


def test_events_show_dispatch_status_and_time_and_the_failure_reason() -> None:
    assert runs.event_detail({"type": "dispatch_attempt", "detail": {"status": 503, "duration_ms": 120}}) == \
        "HTTP 503 in 120 ms"
    assert runs.event_detail({"type": "dispatch_attempt", "detail": {"error": "timed out", "duration_ms": 10000}}) \
        == "no answer in 10000 ms: timed out"
    assert runs.event_detail({"type": "failed", "detail": {"reason": "timeout", "error": "exceeded 60 s",
                                                           "retrying": True}}) == \
        "reason timeout: exceeded 60 s (a retry follows)"
    assert runs.event_detail({"type": "callback", "detail": {"status": "FAILED", "error": "disk full",
                                                             "authenticated_by": "signature"}}) == \
        "FAILED by signature: disk full"
    assert runs.event_detail({"type": "heartbeat", "detail": {"progress": 40, "message": "reading"}}) == "40% reading"
    # Fields the command does not know yet are still shown.
    assert runs.event_detail({"type": "retry_scheduled", "detail": {"wait_seconds": 30}}) == "wait_seconds=30"


def test_api_errors_read_as_sentences_and_a_422_names_the_flag() -> None:
    invalid = api.ApiError(422, [{"loc": ["query", "created_after"], "msg": "Input should be a valid datetime",
                                  "type": "datetime_parsing"}, {"loc": ["body"], "msg": "Invalid JSON"}])
    assert runs.describe(invalid) == ("Invalid request (422):\n  --created-after: Input should be a valid datetime\n"
                                      "  body: Invalid JSON")
    assert runs.describe(api.ApiError(401, "Invalid or revoked API key")) == \
        "Not signed in (401): Invalid or revoked API key. Check --api-key or $KSFLOW_API_KEY."
    assert runs.describe(api.ApiError(404, "Workflow run not found")) == "Not found (404): Workflow run not found"
    assert _raw_controls(runs.describe(api.ApiError(409, HOSTILE))) == []
    assert runs.describe(api.ApiError(502, "Bad Gateway")) == "The API answered (502): Bad Gateway"


@pytest.mark.parametrize(("argv", "complaint"), [
    (["list", "--status", "DONE"], "expected one of PENDING, RUNNING, COMPLETED, FAILED, got 'DONE'"),
    (["list", "--created-after", "yesterday"], "expected an ISO 8601 time"),
    (["list", "--limit", "-1"], "expected 0 or more"),
    (["list", "--definition-id", "nope"], "invalid UUID value"),
    (["get", "../../v1/api-keys"], "expected a run id (a UUID), got '../../v1/api-keys'"),
    (["get"], "the following arguments are required: RUN_ID"),
    (["delete", RUN_ID], "invalid choice: 'delete'"),
])
def test_bad_arguments_are_named_before_any_call(argv: list[str], complaint: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        runs.main(argv)
    assert exit_.value.code == 2
    assert complaint in capsys.readouterr().err


def test_status_is_case_insensitive_and_repeatable() -> None:
    args = runs.parser().parse_args(["list", "--status", "failed", "--status", "Running", "--mine"])
    assert (args.status, args.mine, args.limit, args.offset) == (["FAILED", "RUNNING"], True, 20, 0)


def _credentials(tmp_path: Path, url: str = "http://localhost:8000", key: str = "sk-local") -> Path:
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"api_url": url, "api_key": key, "tenant_id": "t"}))
    return path


def test_flags_win_over_the_environment_which_wins_over_the_credentials_file(tmp_path: Path) -> None:
    file = _credentials(tmp_path)
    environ = {api.URL_ENV: "https://env.example.com/", api.KEY_ENV: "sk-env"}
    assert api.resolve_target("https://flag.example.com", "sk-flag", environ, file) == \
        api.Target("https://flag.example.com", "sk-flag")
    assert api.resolve_target(None, None, environ, file) == api.Target("https://env.example.com", "sk-env")
    assert api.resolve_target(None, None, {}, file) == api.Target("http://localhost:8000", "sk-local")
    assert api.resolve_target(None, "sk-other-user", {}, file) == api.Target("http://localhost:8000", "sk-other-user")
    assert api.resolve_target("http://localhost:8000/", None, {}, file).api_key == "sk-local"


def test_the_local_key_is_never_sent_to_another_api(tmp_path: Path) -> None:
    file = _credentials(tmp_path)
    with pytest.raises(api.TerminalError, match=r"No API key for https://prod\.example\.com: pass --api-key or set"):
        api.resolve_target("https://prod.example.com", None, {}, file)
    with pytest.raises(api.TerminalError, match="No API key"):
        api.resolve_target(None, None, {api.URL_ENV: "https://prod.example.com"}, file)


def test_without_any_target_the_message_says_how_to_give_one(tmp_path: Path) -> None:
    with pytest.raises(api.TerminalError, match=r"pass --api-url and --api-key, set KSFLOW_API_URL and "
                                                r"KSFLOW_API_KEY, or start the local stack with `make run`"):
        api.resolve_target(None, None, {}, tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(api.TerminalError, match="No API to call"):
        api.resolve_target(None, None, {}, tmp_path / "broken.json")
    with pytest.raises(api.TerminalError, match="must start with http:// or https://"):
        api.resolve_target("file:///etc/passwd", "sk-x", {}, tmp_path / "missing.json")


def test_a_command_without_a_target_exits_1_with_the_message_and_no_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with monkeypatch.context() as patched:
        patched.chdir(tmp_path)
        patched.delenv(api.URL_ENV, raising=False)
        patched.delenv(api.KEY_ENV, raising=False)
        assert runs.main(["list"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: No API to call") and "Traceback" not in error


class _Recorder(BaseHTTPRequestHandler):
    """Answers every GET with the status and body queued on its server, and records the request."""

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        server.seen.append((self.path, self.headers.get("Authorization")))
        status, headers, body = server.answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


class _Server(HTTPServer):
    answer: tuple[int, dict[str, str], bytes] = (200, {}, b"{}")
    seen: list[tuple[str, str | None]]


@pytest.fixture
def servers() -> Iterator[tuple[_Server, _Server]]:
    started = []
    for _ in range(2):
        server = _Server(("127.0.0.1", 0), _Recorder)
        server.seen = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
    yield started[0], started[1]
    for server in started:
        server.shutdown()
        server.server_close()


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_queries_repeat_list_parameters_and_send_the_key_as_a_bearer_token(servers: tuple[_Server, _Server]) -> None:
    server, _ = servers
    server.answer = (200, {}, b'{"items": []}')
    found = api.Client(api.Target(_url(server), "sk-secret")).get(
        "/v1/workflow-runs", {"status": ["FAILED", "RUNNING"], "mine": True, "sort_by": None, "limit": 5})
    assert found == {"items": []}
    assert server.seen == [("/v1/workflow-runs?status=FAILED&status=RUNNING&mine=true&limit=5", "Bearer sk-secret")]


def test_error_answers_become_their_detail(servers: tuple[_Server, _Server]) -> None:
    server, _ = servers
    client = api.Client(api.Target(_url(server), "sk-secret"))
    server.answer = (404, {}, b'{"detail": "Workflow run not found"}')
    with pytest.raises(api.ApiError) as error:
        client.get(f"/v1/workflow-runs/{RUN_ID}")
    assert (error.value.status, error.value.detail) == (404, "Workflow run not found")
    server.answer = (502, {}, b"<html>Bad gateway</html>")
    with pytest.raises(api.ApiError, match="502: <html>Bad gateway</html>"):
        client.get("/v1/workflow-runs")
    server.answer = (200, {}, b"<html>a web page</html>")
    with pytest.raises(api.TerminalError, match="not JSON; is the URL the ksflow API"):
        client.get("/v1/workflow-runs")


def test_a_redirect_is_not_followed_so_the_key_goes_nowhere_else(servers: tuple[_Server, _Server]) -> None:
    server, elsewhere = servers
    server.answer = (302, {"Location": _url(elsewhere) + "/steal"}, b"")
    with pytest.raises(api.ApiError) as error:
        api.Client(api.Target(_url(server), "sk-secret")).get("/v1/workflow-runs")
    assert error.value.status == 302 and elsewhere.seen == []


def test_an_unreachable_api_is_named_and_the_key_is_not(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    server.server_close()  # nothing listens there any more
    target = api.Target(url, "sk-secret")
    with pytest.raises(api.TerminalError, match=f"Cannot reach the API at {url}") as error:
        api.Client(target).get("/v1/workflow-runs")
    assert "sk-secret" not in str(error.value) and "sk-secret" not in repr(target)
