"""The seat poll, answered from memory.

Every open programme page asks for `/places?lang=…` every few seconds: the hottest path of the
site. Once a process has rendered the seats of a fresh snapshot (webapp.snapshots), this WSGI
middleware answers the same URL from memory before Flask builds a request: no session, no hook,
no query, no rendering. Any other request, and a poll whose answer is stale or not rendered yet,
goes on to Flask, whose view renders it and keeps it for the next ones.
"""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import parse_qsl

from werkzeug.http import parse_etags

from ..snapshots import Rendered, SnapshotCache

PATH = "/places"
STATUS_LINES = {status: f"{status} {HTTPStatus(status).phrase}" for status in (200, 304)}


def poll_key(part: str | None, language: str) -> tuple:
    return ("places", "choices" if part == "choices" else "cards", language)


def answer(
    updates: Rendered, if_none_match: str | None
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of a poll: 304 when the page already shows these seats."""
    headers = [("ETag", f'"{updates.etag}"'), ("Cache-Control", "no-cache")]
    if parse_etags(if_none_match).contains(updates.etag):
        return 304, headers, b""
    headers += [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(updates.body))),
    ]
    return 200, headers, updates.body


class SeatPolls:
    def __init__(
        self,
        wsgi_app,
        cache: SnapshotCache,
        languages: tuple[str, ...],
        security_headers: tuple[tuple[str, str], ...],
    ):
        self.wsgi_app = wsgi_app
        self.cache = cache
        self.languages = languages
        self.security_headers = security_headers

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == PATH and environ.get("REQUEST_METHOD") == "GET":
            query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
            language = query.get("lang")
            updates = (
                self.cache.fresh(poll_key(query.get("part"), language))
                if language in self.languages
                else None
            )
            if updates is not None:
                status, headers, body = answer(updates, environ.get("HTTP_IF_NONE_MATCH"))
                start_response(STATUS_LINES[status], [*headers, *self.security_headers])
                return [body]
        return self.wsgi_app(environ, start_response)
