"""Check-in on the day: by QR code or from a searchable list, with undo."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from jinja2_fragments.flask import render_block

from .. import audit
from ..checkin import (
    NotSeatedError,
    arrival_time,
    check_in,
    find_by_checkin_code,
    undo_check_in,
)
from ..errors import error_page
from ..events import current_event
from ..extensions import db
from ..formatting import clock
from ..links import local_target
from ..models import Registration, RegistrationStatus
from ..roster import by_last_name, event_roster, name_matches
from . import admin

CHECKIN_CHANGED = "checkin-changed"
LIST_TEMPLATE = "admin/checkin.html"
SEARCH_MAX_LENGTH = 100


@admin.context_processor
def checkin_helpers():
    return {"arrival_time": arrival_time}


@admin.get("/accueil")
def checkin():
    """The seated participants, workshop by workshop, found by name as one types. An htmx
    request gets the results only (or, with ?part=counts, the present/absent counts)."""
    event = current_event()
    numbers = {w.number for w in event.workshops}
    workshop_number = request.args.get("workshop", type=int)
    if workshop_number not in numbers:
        workshop_number = None
    text = request.args.get("q", "").strip()[:SEARCH_MAX_LENGTH]
    roster = event_roster(db.session, event, workshop_number)
    context = {
        "workshop_number": workshop_number,
        "text": text,
        "sections": [
            (w.workshop, by_last_name(r for r in w.seated if name_matches(r, text)))
            for w in roster.workshops
        ],
        "present": roster.checked_in,
        "expected": len(roster.seated),
        "list_url": url_for("admin.checkin", workshop=workshop_number, q=text or None),
        "counts_url": url_for("admin.checkin", workshop=workshop_number, part="counts"),
    }
    if request.htmx and not request.htmx.boosted:
        block = "counts" if request.args.get("part") == "counts" else "results"
        response = current_app.make_response(render_block(LIST_TEMPLATE, block, **context))
    else:
        response = current_app.make_response(render_template(LIST_TEMPLATE, **context))
    response.vary.add("HX-Request")
    return response


@admin.get("/accueil/code/<code>")
def checkin_code(code: str):
    """The page a QR code opens: who this is, and one button to record their arrival."""
    registration = find_by_checkin_code(db.session, current_event(), code)
    if registration is None:
        return _unknown_code()
    return _code_page(registration)


def _code_page(registration: Registration, status: int = 200):
    refusal = (
        None
        if registration.status is RegistrationStatus.CONFIRMED
        else not_seated_message(registration)
    )
    page = render_template("admin/checkin_code.html", registration=registration, refusal=refusal)
    return page, status


@admin.post("/accueil/code/<code>/arrivee")
def checkin_arrive(code: str):
    return _change_presence(code, check_in, _arrival_message)


@admin.post("/accueil/code/<code>/annulation")
def checkin_undo(code: str):
    return _change_presence(code, undo_check_in, _undo_message)


def _change_presence(
    code: str,
    change: Callable[..., bool],
    message_for: Callable[[Registration, bool], str],
):
    """Applies the change, then answers the list's htmx request with the participant's row,
    and a plain form with a redirect to the page it came from (the list and its filters, or the
    QR code's page)."""
    registration = find_by_checkin_code(db.session, current_event(), code)
    if registration is None:
        return _unknown_code()
    back = local_target(
        request.form.get("next", ""), fallback=url_for("admin.checkin_code", code=code)
    )
    try:
        changed = change(db.session, audit.Actor.of(current_user), registration)
        db.session.commit()
    except NotSeatedError:
        db.session.rollback()
        return _refuse_not_seated(registration, back)
    message = message_for(registration, changed)
    if request.htmx:
        row = render_block(
            LIST_TEMPLATE, "participant_row", registration=registration, list_url=back, note=message
        )
        response = current_app.make_response(row)
        if changed:
            response.headers["HX-Trigger"] = CHECKIN_CHANGED
        return response
    flash(message, "success")
    return redirect(back, code=303)


def _refuse_not_seated(registration: Registration, back: str):
    message = not_seated_message(registration)
    if request.htmx:
        row = render_block(
            LIST_TEMPLATE, "participant_row", registration=registration, list_url=back, note=message
        )
        return row, 409
    return _code_page(registration, status=409)


def not_seated_message(registration: Registration) -> str:
    if registration.status is RegistrationStatus.WAITLISTED:
        return gettext(
            "%(name)s est sur liste d'attente, sans place confirmée : "
            "son arrivée ne peut pas être enregistrée.",
            name=registration.full_name,
        )
    return gettext(
        "L'inscription de %(name)s est annulée : son arrivée ne peut pas être enregistrée.",
        name=registration.full_name,
    )


def _arrival_message(registration: Registration, changed: bool) -> str:
    values = {"name": registration.full_name, "time": clock(arrival_time(registration))}
    if changed:
        return gettext("%(name)s : arrivée enregistrée à %(time)s.", **values)
    return gettext("%(name)s était déjà là depuis %(time)s : rien n'a changé.", **values)


def _undo_message(registration: Registration, changed: bool) -> str:
    if changed:
        return gettext("%(name)s : présence annulée.", name=registration.full_name)
    return gettext(
        "%(name)s n'était pas enregistré·e comme présent·e : rien n'a changé.",
        name=registration.full_name,
    )


def _unknown_code():
    return error_page(
        404,
        gettext(
            "Ce code d'accueil ne correspond à aucune inscription de cet événement. "
            "Cherchez la personne par son nom dans la liste d'accueil."
        ),
    )
