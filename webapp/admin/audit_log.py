"""The audit log: every change, who made it and when, with filters."""

from __future__ import annotations

from flask import render_template

from . import admin


@admin.get("/journal")
def audit_log():
    return render_template("admin/audit_log.html")
