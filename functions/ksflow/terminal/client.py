"""A small client of the public API (standard library only), and where its URL and key come from."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

URL_ENV = "KSFLOW_API_URL"
KEY_ENV = "KSFLOW_API_KEY"
TIMEOUT_SECONDS = 30
Query = Mapping[str, str | int | bool | Sequence[str] | None]


class TerminalError(Exception):
    """A failure the command reports in one line (or a few), without a traceback."""


class ApiError(TerminalError):
    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Target:
    api_url: str
    api_key: str = ""

    def __repr__(self) -> str:  # never the key, should a Target end up in a message
        return f"Target(api_url={self.api_url!r})"


def resolve_target(api_url: str | None, api_key: str | None, environ: Mapping[str, str],
                   credentials_file: Path) -> Target:
    """The API to call: flags, else the environment, else the running local stack's credentials file.

    The file's key is only ever sent to the file's own URL, so pointing `--api-url` at another
    stack never hands it the local stack's key."""
    url = api_url or environ.get(URL_ENV)
    key = api_key or environ.get(KEY_ENV)
    local = _read_credentials(credentials_file)
    if not url:
        if not local:
            raise TerminalError(f"No API to call: pass --api-url and --api-key, set {URL_ENV} and {KEY_ENV}, "
                                f"or start the local stack with `make run` in this directory ({credentials_file} "
                                "is written when it starts).")
        url = local["api_url"]
    if not key and local and _same_api(url, local["api_url"]):
        key = local["api_key"]
    if not key:
        raise TerminalError(f"No API key for {url}: pass --api-key or set {KEY_ENV}.")
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise TerminalError(f"The API URL must start with http:// or https://, not {url!r}.")
    return Target(url.rstrip("/"), key)


def _read_credentials(path: Path) -> dict[str, str] | None:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict) or not all(isinstance(found.get(name), str) for name in ("api_url", "api_key")):
        return None
    return {"api_url": found["api_url"], "api_key": found["api_key"]}


def _same_api(first: str, second: str) -> bool:
    return first.rstrip("/") == second.rstrip("/")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would repeat the Authorization header to wherever a redirect points; the API never redirects."""

    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class Client:
    def __init__(self, target: Target) -> None:
        self._target = target

    def get(self, path: str, query: Query | None = None) -> Any:
        return self._call("GET", path, query)

    def post(self, path: str, body: Any = None) -> Any:
        return self._call("POST", path, None, body)

    def _call(self, method: str, path: str, query: Query | None, body: Any = None) -> Any:
        url = self._target.api_url + path
        pairs = [(name, _query_value(value)) for name, value in (query or {}).items() if value is not None]
        flat = [(name, item) for name, value in pairs for item in (value if isinstance(value, list) else [value])]
        if flat:
            url += "?" + urllib.parse.urlencode(flat)
        headers = {"Authorization": f"Bearer {self._target.api_key}", "Accept": "application/json"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (http/https checked)
        try:
            with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise ApiError(error.code, _detail(error.read(), error.reason)) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise TerminalError(f"Cannot reach the API at {self._target.api_url}: {reason}") from None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise TerminalError(f"The API at {self._target.api_url} answered something that is not JSON; "
                                "is the URL the ksflow API?") from None


def _query_value(value: str | int | bool | Sequence[str]) -> str | list[str]:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    return list(value)


def _detail(raw: bytes, reason: str) -> Any:
    """The body's FastAPI-style `detail`, else its text (a gateway's error page), else the HTTP reason."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace").strip()[:500] or reason
    if isinstance(body, dict) and "detail" in body:
        return body["detail"]
    if isinstance(body, dict) and "message" in body:  # API Gateway's own answers (throttling, a missing route)
        return body["message"]
    return body

