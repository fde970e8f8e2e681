"""Check-in on the day: by QR code or from a searchable list, with undo."""

from __future__ import annotations

from flask import render_template

from . import admin


@admin.get("/accueil")
def checkin():
    return render_template("admin/checkin.html")
