"""The overview: seats, waiting lists, catering, registrations per day, the outbox, check-in."""

from __future__ import annotations

import hashlib

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from jinja2_fragments.flask import render_block
from sqlalchemy import select

from .. import audit
from ..database import utcnow
from ..events import current_event
from ..extensions import db
from ..mail_delivery import (
    NotFailedError,
    of_event,
    outbox_counts,
    recent_failures,
    retry_failed_message,
)
from ..models import OutboxMessage, OutboxState
from ..roster import event_roster
from ..statistics import registrations_per_day
from . import admin

# How often an open overview asks for fresh figures.
POLL_SECONDS = 12
# Stands for the figures' fingerprint while they are rendered, so the fingerprint can cover them.
FINGERPRINT_PLACEHOLDER = "fingerprint-placeholder"

STATE_LABELS = {
    OutboxState.QUEUED: _l("en attente d'envoi"),
    OutboxState.SENDING: _l("en cours d'envoi"),
    OutboxState.SENT: _l("envoyé"),
    OutboxState.FAILED: _l("en échec"),
}


def _figures_context(event) -> dict:
    now = utcnow()
    roster = event_roster(db.session, event)
    return {
        "roster": roster,
        "days": registrations_per_day(db.session, event, now),
        "outbox": outbox_counts(db.session, event),
        "checkin_started": roster.checked_in > 0 or now.astimezone(event.zone).date() >= event.date,
        "poll_seconds": POLL_SECONDS,
    }


@admin.get("/")
def overview():
    event = current_event()
    context = _figures_context(event)
    if not request.htmx or request.htmx.boosted:
        return _page(event, context)
    # The poll sends the fingerprint of the figures it shows: unchanged figures are not sent
    # again (204, no swap), so the live summary speaks only when a number moved.
    body = render_block(
        "admin/overview.html", "figures", fingerprint=FINGERPRINT_PLACEHOLDER, **context
    )
    fingerprint = hashlib.sha256(body.encode()).hexdigest()[:16]
    if request.args.get("shown") == fingerprint:
        response = current_app.make_response(("", 204))
    else:
        response = current_app.make_response(body.replace(FINGERPRINT_PLACEHOLDER, fingerprint))
    response.vary.add("HX-Request")
    return response


def _page(event, context, status: int = 200):
    body = render_template(
        "admin/overview.html",
        failures=recent_failures(db.session, event),
        fingerprint="",
        **context,
    )
    response = current_app.make_response((body, status))
    response.vary.add("HX-Request")
    return response


@admin.post("/messages/<id:message_id>/renvoyer")
def overview_retry_message(message_id: int):
    # A message of another event (a past one, say) is not this dashboard's to retry.
    message = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.id == message_id, of_event(current_event()))
    )
    if message is None:
        abort(404)
    try:
        retry_failed_message(db.session, audit.Actor.of(current_user), message)
        db.session.commit()
    except NotFailedError:
        db.session.rollback()
        db.session.refresh(message)
        flash(
            gettext(
                "Ce message n'est pas en échec (%(state)s) : il n'a pas été remis dans la file.",
                state=STATE_LABELS[message.state],
            ),
            "error",
        )
        return _page(current_event(), _figures_context(current_event()), status=409)
    flash(
        gettext(
            "Le message à %(recipient)s est de nouveau dans la file ; il part au prochain envoi.",
            recipient=message.recipient,
        ),
        "success",
    )
    return redirect(url_for("admin.overview"), code=303)
