"""The yardsticks the HTTP benchmarks compare the app with, served by the same gunicorn.

    BASELINE_BODIES=DIR gunicorn --chdir benchmarks baseline_app:app

`GET /constant/NAME` returns the bytes of DIR/NAME (a copy of the app's page being measured, so
that both send the same size), with no query, no template and no hook.
"""

import os
from pathlib import Path

from flask import Flask, Response, abort

app = Flask(__name__)
BODIES = {path.name: path.read_bytes() for path in Path(os.environ["BASELINE_BODIES"]).iterdir()}


@app.get("/constant/<name>")
def constant(name: str):
    if name not in BODIES:
        abort(404)
    return Response(BODIES[name], mimetype="text/html")
