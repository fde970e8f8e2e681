"""The workshops: capacity, the registration window, each workshop's roster and waiting list."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, ValidationError

from .. import audit
from .. import workshops as workshop_changes
from ..events import current_event
from ..extensions import db
from ..models import Workshop
from ..registration import registration_window, workshop_availability
from ..roster import event_roster
from . import admin, admin_only

CAPACITY_HINT = _l(
    "Indiquez un nombre entier de places, de 0 à %(most)s.", most=workshop_changes.MAX_CAPACITY
)


class CapacityForm(FlaskForm):
    capacity = StringField(_l("Nouvelle capacité"))

    def validate_capacity(self, field):
        # Not a string when a JSON body was posted.
        text = field.data.strip() if isinstance(field.data, str) else ""
        if not (
            text.isascii()
            and text.isdigit()
            and len(text) <= 6
            and int(text) <= workshop_changes.MAX_CAPACITY
        ):
            raise ValidationError(CAPACITY_HINT)


class CloseRegistrationForm(FlaskForm):
    confirm = BooleanField(
        _l("Je confirme : plus personne ne pourra s'inscrire."),
        validators=[DataRequired(_l("Cochez la case pour confirmer la clôture."))],
    )


def _workshop(event, number: int) -> Workshop:
    workshop = db.session.scalar(
        select(Workshop).where(Workshop.event_id == event.id, Workshop.number == number)
    )
    if workshop is None:
        abort(404)
    return workshop


def _page(event, status: int = 200, capacity_forms=None, close_form=None):
    forms = capacity_forms or {}
    body = render_template(
        "admin/workshops.html",
        availability=workshop_availability(db.session, event),
        window=registration_window(event),
        default_closes=workshop_changes.default_registration_closes(event),
        capacity_forms={
            w.number: forms.get(w.number) or CapacityForm(formdata=None, capacity=w.capacity)
            for w in event.workshops
        },
        close_form=close_form or CloseRegistrationForm(formdata=None),
        max_capacity=workshop_changes.MAX_CAPACITY,
    )
    return body, status


@admin.get("/ateliers")
def workshops():
    return _page(current_event())


@admin.get("/ateliers/<id:number>")
def workshops_roster(number: int):
    event = current_event()
    roster = event_roster(db.session, event, workshop_number=number)
    if not roster.workshops:
        abort(404)
    return render_template("admin/workshop.html", roster=roster.workshops[0])


@admin.post("/ateliers/<id:number>/capacite")
@admin_only
def workshops_capacity(number: int):
    event = current_event()
    workshop = _workshop(event, number)
    form = CapacityForm()
    if not form.validate_on_submit():
        return _page(event, 422, capacity_forms={number: form})
    before = workshop.capacity
    try:
        promoted = workshop_changes.change_capacity(
            db.session, audit.Actor.of(current_user), workshop, int(form.capacity.data)
        )
        db.session.commit()
    except workshop_changes.CapacityOutOfRangeError:
        db.session.rollback()
        form.capacity.errors = [str(CAPACITY_HINT)]
        return _page(event, 422, capacity_forms={number: form})
    except workshop_changes.CapacityBelowSeatsError as refusal:
        db.session.rollback()
        form.capacity.errors = [
            ngettext(
                "La capacité ne peut pas descendre sous la %(num)s place déjà prise. "
                "Rien n'a été changé.",
                "La capacité ne peut pas descendre sous les %(num)s places déjà prises. "
                "Rien n'a été changé.",
                refusal.seats_taken,
            )
        ]
        return _page(event, 409, capacity_forms={number: form})
    message = gettext(
        "Atelier %(number)s : capacité %(before)s → %(after)s.",
        number=number,
        before=before,
        after=workshop.capacity,
    )
    if promoted:
        message += " " + ngettext(
            "%(num)s personne de la liste d'attente a reçu une place (un e-mail la prévient).",
            "%(num)s personnes de la liste d'attente ont reçu une place (un e-mail les prévient).",
            promoted,
        )
    flash(message, "success")
    return redirect(url_for("admin.workshops"), code=303)


@admin.post("/ateliers/inscriptions/cloturer")
@admin_only
def workshops_close_registration():
    event = current_event()
    form = CloseRegistrationForm()
    if not form.validate_on_submit():
        return _page(event, 422, close_form=form)
    try:
        workshop_changes.close_registration(db.session, audit.Actor.of(current_user), event)
        db.session.commit()
    except workshop_changes.AlreadyClosedError:
        db.session.rollback()
        flash(gettext("Les inscriptions sont déjà clôturées."), "error")
        return _page(event, 409)
    flash(gettext("Les inscriptions sont clôturées."), "success")
    return redirect(url_for("admin.workshops"), code=303)


@admin.post("/ateliers/inscriptions/rouvrir")
@admin_only
def workshops_reopen_registration():
    event = current_event()
    try:
        workshop_changes.reopen_registration(db.session, audit.Actor.of(current_user), event)
        db.session.commit()
    except workshop_changes.AlreadyOpenError:
        db.session.rollback()
        flash(gettext("Les inscriptions ne sont pas clôturées : rien à rouvrir."), "error")
        return _page(event, 409)
    except workshop_changes.TooLateToReopenError:
        db.session.rollback()
        flash(
            gettext(
                "Trop tard pour rouvrir : les inscriptions se clôturent d'office à minuit "
                "la veille de la journée, et ce moment est passé."
            ),
            "error",
        )
        return _page(event, 409)
    flash(gettext("Les inscriptions sont rouvertes."), "success")
    return redirect(url_for("admin.workshops"), code=303)
