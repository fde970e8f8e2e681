"""Absolute links for e-mails, built from PUBLIC_URL rather than from a request."""

from urllib.parse import urlsplit

from flask import current_app


def public_url(endpoint: str, **values) -> str:
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return current_app.config["PUBLIC_URL"] + path


def public_host() -> str:
    return urlsplit(current_app.config["PUBLIC_URL"]).hostname or "localhost"
