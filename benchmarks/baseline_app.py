"""The yardsticks the HTTP benchmarks compare the app with, served by the same gunicorn.

    BASELINE_BODIES=DIR BASELINE_DATABASE_URL=URL \
        gunicorn --preload --chdir benchmarks baseline_app:app

`GET /constant/NAME` returns the bytes of DIR/NAME (a copy of the app's page being measured, so
that both send the same size), with no query, no template and no hook.
`POST /insert` writes the posted `email` into a table of its own in BASELINE_DATABASE_URL, one
INSERT + COMMIT through SQLAlchemy Core with the app's connection settings, and answers 303
like the registration form. (--preload: the table is created once, before the workers start.)
"""

import os
from pathlib import Path

from flask import Flask, Response, abort, redirect, request
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert

from webapp.database import sqlite_engine_options

app = Flask(__name__)
BODIES_DIR = os.environ.get("BASELINE_BODIES")
BODIES = {path.name: path.read_bytes() for path in Path(BODIES_DIR).iterdir()} if BODIES_DIR else {}

DATABASE_URL = os.environ.get("BASELINE_DATABASE_URL", "sqlite://")
engine = create_engine(
    DATABASE_URL,
    **(sqlite_engine_options(30) if DATABASE_URL.startswith("sqlite") else {"pool_pre_ping": True}),
)
inserted = Table(
    "baseline_insert",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("email", String(320)),
)
inserted.create(engine, checkfirst=True)
engine.dispose()  # the workers forked from here open connections of their own


@app.get("/constant/<name>")
def constant(name: str):
    if name not in BODIES:
        abort(404)
    return Response(BODIES[name], mimetype="text/html")


@app.post("/insert")
def insert_one():
    with engine.begin() as connection:
        connection.execute(insert(inserted).values(email=request.form["email"]))
    return redirect("/", code=303)
