"""The console's files as the API serves them: no credentials needed, a strict CSP, revalidation by ETag."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ksflow.console import routes
from tests.unit.test_public_pages import get

STATIC = Path(routes.__file__).parent / "static"


def _policy(headers: dict[str, str]) -> dict[str, list[str]]:
    directives = [d.strip().split() for d in headers["Content-Security-Policy"].split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def test_the_page_loads_without_credentials_under_a_policy_that_forbids_inline_code(
        aws_env: dict[str, str]) -> None:
    status, headers, body = get("/console")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    policy = _policy(headers)
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    page = body.decode()
    # No inline script or style for the policy to refuse, and nothing from another origin.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert "style=" not in page and "<style" not in page
    assert all(url.startswith("/console/") for url in re.findall(r'(?:src|href)="([^"#]+)"', page))


def test_uploads_may_connect_to_the_documents_bucket_and_nowhere_else(aws_env: dict[str, str]) -> None:
    routes.documents_origin.cache_clear()
    _, headers, _ = get("/console")
    connect = _policy(headers)["connect-src"]
    assert connect[0] == "'self'"
    assert len(connect) == 2
    # The origin of the presigned part URLs the upload endpoint hands out.
    assert re.fullmatch(r"https?://[^/]+", connect[1])
    from ksflow.uploads import objects

    assert objects.part_url("k", "u", 1, 60).startswith(connect[1] + "/")


def test_every_module_the_console_imports_is_served(aws_env: dict[str, str]) -> None:
    imported = set()
    for script in STATIC.glob("*.js"):
        imported |= set(re.findall(r'(?:from|import\()\s*"(/console/[^"]+)"', script.read_text()))
    assert "/console/app.js" in get("/console")[2].decode()
    for path in sorted(imported):
        status, headers, _ = get(path)
        assert status == 200, path
        assert headers["Content-Type"].startswith("text/javascript"), path


def test_scripts_never_parse_markup_from_strings() -> None:
    """Every value from the API goes into text nodes: no script assigns or inserts HTML."""
    for script in STATIC.glob("*.js"):
        source = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in source, (script.name, sink)


def test_an_unchanged_file_is_revalidated_with_a_304(aws_env: dict[str, str]) -> None:
    status, headers, body = get("/console/app.js")
    assert status == 200 and body
    etag = headers["ETag"]
    status, again, body = get("/console/app.js", {"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert again["ETag"] == etag
    assert get("/console/app.js", {"If-None-Match": '"stale"'})[0] == 200


@pytest.mark.parametrize("path", ["/console/routes.py", "/console/..%2Froutes.py", "/console/__init__.py",
                                  "/console/static", "/console/nope.js"])
def test_only_the_console_files_are_served(aws_env: dict[str, str], path: str) -> None:
    status, headers, _ = get(path)
    assert status == 404
    assert headers["Content-Type"] == "application/json"


def test_a_trailing_slash_redirects_to_the_page(aws_env: dict[str, str]) -> None:
    status, headers, _ = get("/console/")
    assert status == 308
    assert headers["Location"] == "/console"


def test_the_stylesheet_parses_block_by_block() -> None:
    """An unclosed block would swallow every rule after it (each page adds its own block at the end)."""
    depth = 0
    for number, line in enumerate((STATIC / "console.css").read_text().splitlines(), 1):
        depth += line.count("{") - line.count("}")
        assert depth >= 0, number
        if line.startswith("/* Page:"):
            assert depth == 0, f"line {number} starts a page's block inside another block"
    assert depth == 0
