"""Static file URLs carry a digest of the file (`?v=…`): a changed file gets a new URL, so that
browsers may keep each one for a year (deploy/nginx-atelier.conf)."""

import hashlib
import os

from flask import Flask
from werkzeug.security import safe_join


def init_app(app: Flask) -> None:
    digests: dict[str, tuple[int, str]] = {}

    @app.url_defaults
    def add_static_version(endpoint: str, values: dict) -> None:
        if endpoint != "static" or "v" in values:
            return
        path = safe_join(app.static_folder, values.get("filename", ""))
        if path is None or not os.path.isfile(path):
            return
        modified = os.stat(path).st_mtime_ns
        known = digests.get(path)
        if known is None or known[0] != modified:
            with open(path, "rb") as file:
                known = (modified, hashlib.sha256(file.read()).hexdigest()[:12])
            digests[path] = known
        values["v"] = known[1]
