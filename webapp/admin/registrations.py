"""The registrations: search, filters, a registration's detail and the actions on it."""

from __future__ import annotations

from flask import render_template

from . import admin


@admin.get("/inscriptions")
def registrations():
    return render_template("admin/registrations.html")
