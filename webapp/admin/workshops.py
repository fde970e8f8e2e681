"""The workshops: capacity, the registration window, each workshop's roster and waiting list."""

from __future__ import annotations

from flask import render_template

from . import admin


@admin.get("/ateliers")
def workshops():
    return render_template("admin/workshops.html")
