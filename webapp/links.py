"""Links: absolute ones for e-mails, built from PUBLIC_URL rather than from a request, and
safe redirect targets."""

from urllib.parse import urlsplit, urlunsplit

from flask import current_app, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter


class DatabaseIdConverter(IntegerConverter):
    """`<id:…>`: a row's id, at most the largest integer a database column holds, so that a
    larger number in a URL is a 404 rather than a database error."""

    def __init__(self, url_map):
        super().__init__(url_map, max=2**31 - 1)


def public_url(endpoint: str, **values) -> str:
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["PUBLIC_URL"] + path


def public_host() -> str:
    return urlsplit(current_app.config["PUBLIC_URL"]).hostname or "localhost"


def local_target(target: str, fallback: str | None = None) -> str:
    """`target` if it is a page of this site, else `fallback` (the programme): a redirect taken
    from a parameter must never send anyone elsewhere (browsers drop tabs and newlines, so
    `/\t/evil.example` means `//evil…`)."""
    fallback = fallback or url_for("public.programme")
    if not target.isprintable() or "\\" in target:
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or target.startswith("//"):
        return fallback
    try:
        current_app.url_map.bind("localhost").match(parts.path, method="GET")
    except HTTPException:
        return fallback
    return urlunsplit(("", "", parts.path, parts.query, ""))
