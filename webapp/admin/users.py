"""Accounts: admins create and disable organisers' and admins' accounts."""

from __future__ import annotations

from flask import render_template

from . import admin, admin_only


@admin.get("/comptes")
@admin_only
def users():
    return render_template("admin/users.html")
