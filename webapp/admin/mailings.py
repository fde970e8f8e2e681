"""Mailings: audience, note, preview, confirmation, progress; past mailings."""

from __future__ import annotations

from flask import render_template

from . import admin


@admin.get("/envois")
def mailings():
    return render_template("admin/mailings.html")
