"""Exports: CSV of the registrations, printable attendance sheets."""

from __future__ import annotations

from flask import render_template

from . import admin, admin_only


@admin.get("/exports")
@admin_only
def exports():
    return render_template("admin/exports.html")
