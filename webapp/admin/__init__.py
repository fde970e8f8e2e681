"""The organisers' and admins' dashboard, at /admin: one guard for every page."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, current_app, redirect, request, url_for
from flask_login import current_user

from ..accounts import load_session_user
from ..events import find_current_event
from ..extensions import db, login_manager
from ..models import Role

admin = Blueprint("admin", __name__, url_prefix="/admin")

# Pages anyone may open: the login form itself.
OPEN_ENDPOINTS = {"admin.login"}


def admin_only(view: Callable) -> Callable:
    """Marks a page as the admins' (exports, edits, capacity, accounts); the guard refuses it
    to organisers with 403."""
    view.required_role = Role.ADMIN
    return view


@login_manager.user_loader
def _load_user(session_id: str):
    # None for a disabled account or a renewed nonce: the session ends at its next request.
    return load_session_user(db.session, session_id)


@admin.before_request
def require_login_and_role():
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        login_url = url_for("admin.login", next=request.full_path.rstrip("?"))
        if request.htmx:
            # htmx does not show a redirect's target; it follows HX-Redirect.
            response = current_app.make_response(("", 200))
            response.headers["HX-Redirect"] = login_url
            return response
        return redirect(login_url, code=303)
    view = current_app.view_functions.get(request.endpoint)
    if getattr(view, "required_role", Role.ORGANISER) is Role.ADMIN and not current_user.is_admin:
        abort(403)
    return None


@admin.context_processor
def the_event():
    """The event the site serves: the one every dashboard page is about."""
    return {"event": find_current_event()}


@admin.after_request
def never_cache(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


from . import (  # noqa: E402, F401
    audit_log,
    auth,
    checkin,
    exports,
    mailings,
    overview,
    registrations,
    users,
    workshops,
)
