"""`/console`: the console's page and its static files, served by the API function itself.

Same origin as the API, so the console's calls need no CORS and its Content-Security-Policy can say
`'self'`; one deployable, no CloudFront distribution to secure and pay for. Files are read from the
package once per container; each answer carries an ETag, so a browser revalidates with a 304.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from ksflow.errors import NotFound

router = APIGatewayHttpRouter()

CONSOLE_PATH = "/console"
STATIC_DIR = Path(__file__).parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# Revalidated on every load (a 304 when unchanged), so a deploy is seen at once.
CACHE_CONTROL = "no-cache"


@cache
def documents_origin() -> str:
    """The origin direct-upload URLs point at (S3, or the local stack's S3 server): the console PUTs there."""
    from ksflow.uploads import objects

    parts = urlsplit(objects.download_url("console-origin-probe"))
    return f"{parts.scheme}://{parts.netloc}"


def security_headers() -> dict[str, str]:
    """No inline script or style, nothing from another origin but the documents bucket (uploads)."""
    policy = "; ".join((
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
        f"connect-src 'self' {documents_origin()}", "base-uri 'none'", "form-action 'self'",
        "frame-ancestors 'none'",
    ))
    return {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": CACHE_CONTROL}


@cache
def _files() -> dict[str, tuple[bytes, str]]:
    """Every file the console serves, by name, with its ETag; nothing outside the static folder."""
    contents = {path.name: path.read_bytes() for path in STATIC_DIR.iterdir() if path.suffix in CONTENT_TYPES}
    return {name: (body, f'"{hashlib.sha256(body).hexdigest()[:32]}"') for name, body in contents.items()}


def _serve(name: str) -> Response:
    found = _files().get(name)
    if found is None:
        raise NotFound("Not Found")
    body, etag = found
    headers = {**security_headers(), "ETag": etag}
    if_none_match = (router.current_event.headers or {}).get("if-none-match", "")
    if etag in {tag.strip() for tag in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(status_code=200, content_type=CONTENT_TYPES[Path(name).suffix], body=body, headers=headers)


@router.get(CONSOLE_PATH, include_in_schema=False, compress=True)
def console_page():  # no return annotation: it would enter the OpenAPI schema
    return _serve("index.html")


@router.get(f"{CONSOLE_PATH}/", include_in_schema=False)
def console_slash():
    return Response(status_code=308, headers={"Location": CONSOLE_PATH})


@router.get(f"{CONSOLE_PATH}/<file_name>", include_in_schema=False, compress=True)
def console_file(file_name: str):
    return _serve(file_name)
