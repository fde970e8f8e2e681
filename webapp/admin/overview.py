"""The overview: seats, waiting lists, catering, registrations per day, the outbox, check-in."""

from __future__ import annotations

from flask import render_template

from . import admin


@admin.get("/")
def overview():
    return render_template("admin/overview.html")
