"""The first-party tag: ``GET /tag.js`` serves ``static/journeymap.js`` from the collector.

The site loads the tag from the collector's own host, so the collector's anonymous-id cookie
is first-party::

    <script src="https://track.example.com/tag.js" data-write-key="KEY" async></script>

The file is package data, read once when the router is built. Browsers cache it for an hour
and then revalidate it with ``If-None-Match``, and the route returns 304 while the file is
unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request, Response

TAG_PACKAGE = "journeymap.collect"
TAG_FILE = "journeymap.js"
MEDIA_TYPE = "application/javascript; charset=utf-8"
CACHE_CONTROL = "public, max-age=3600"

DESCRIPTION = """\
The first-party JavaScript tag (no dependencies, ES2017). Load it from the collector's host:

    <script src="https://track.example.com/tag.js" data-write-key="KEY" async></script>

On load it sends a `page` call with the page, the campaign (`utm_*`) and the click ids of the
landing URL, and it defines `window.journeymap` with `page`, `track`, `identify`, `group`,
`alias`, `reset` and `consent`. Messages go to this collector's `/v1/<type>` routes as JSON in
a `text/plain` body, with `writeKey` in the body.

Responses carry `Cache-Control: public, max-age=3600` and an `ETag`; a request whose
`If-None-Match` matches the ETag gets 304 Not Modified without a body.
"""


@dataclass(frozen=True)
class Tag:
    """The tag's bytes and their strong entity tag (a quoted SHA-256 prefix)."""

    body: bytes
    etag: str


@cache
def load_tag() -> Tag:
    """Read the tag from the installed package and compute its ETag.

    Raises:
        FileNotFoundError: the package was built without ``collect/static/journeymap.js``.
            List ``"collect/static/*.js"`` under ``[tool.setuptools.package-data]``.
    """
    body = (resources.files(TAG_PACKAGE) / "static" / TAG_FILE).read_bytes()
    return Tag(body=body, etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Return whether an ``If-None-Match`` header matches ``etag``.

    HTTP (RFC 9110) compares If-None-Match tags weakly, so ``W/"x"`` matches ``"x"``. The
    header can list several tags separated by commas, or be ``*``.
    """
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    opaque_tag = etag.removeprefix("W/")
    return any(
        candidate.strip().removeprefix("W/") == opaque_tag for candidate in if_none_match.split(",")
    )


def tag_router() -> APIRouter:
    """Build the router of ``GET /tag.js``, reading the tag file once here, not per request."""
    tag = load_tag()
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": tag.etag,
        "X-Content-Type-Options": "nosniff",
    }
    router = APIRouter()

    @router.get(
        "/tag.js",
        summary="The first-party JavaScript tag",
        description=DESCRIPTION,
        tags=["tag"],
        response_class=Response,
        responses={
            200: {
                "description": "The tag's source.",
                "content": {"application/javascript": {"schema": {"type": "string"}}},
            },
            304: {"description": "Not Modified: the cached copy with this ETag is current."},
        },
    )
    def get_tag(request: Request) -> Response:
        if etag_matches(request.headers.get("if-none-match"), tag.etag):
            return Response(status_code=304, headers=headers)
        return Response(content=tag.body, media_type=MEDIA_TYPE, headers=headers)

    return router
