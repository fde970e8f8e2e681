"""The yardsticks the HTTP benchmarks compare the app with, served by the same gunicorn.

    gunicorn --chdir benchmarks baseline_app:app

`GET /constant` returns the bytes of BASELINE_BODY_FILE (a copy of the app's page being
measured, so that both send the same size), with no query, no template and no hook.
"""

import os
from pathlib import Path

from flask import Flask, Response

app = Flask(__name__)
CONSTANT_BODY = Path(os.environ["BASELINE_BODY_FILE"]).read_bytes()


@app.get("/constant")
def constant():
    return Response(CONSTANT_BODY, mimetype="text/html")
