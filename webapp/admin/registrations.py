"""The registrations: search, filters, a registration's detail and the actions on it."""

from __future__ import annotations

import dataclasses
import re

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from jinja2_fragments.flask import render_block
from sqlalchemy import select
from wtforms import BooleanField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired

from .. import audit
from .. import registration as registrations
from ..events import current_event
from ..extensions import db
from ..forms import SINGLE_LINE_FORBIDDEN, ParticipantDetailsForm, one_of_the_choices, whole_number
from ..models import MailKind, OutboxMessage, Registration, RegistrationStatus, Workshop
from ..roster import RegistrationSearch, SortKey, search_registrations
from . import admin, admin_only

SEARCH_MAX_LENGTH = 100
LUNCH_VALUES = {"yes": True, "no": False}
ORDERS = {"asc": False, "desc": True}
PAGE_NUMBER = re.compile(r"[0-9]{1,6}")


class BadQuery(Exception):
    """A filter in the address that the page does not offer (a tampered or stale link)."""


def _one_of(name: str, values: dict):
    value = request.args.get(name, "")
    if value == "":
        return None
    if value not in values:
        raise BadQuery(name)
    return values[value]


def _search_from_query(workshop_numbers: set[int]) -> RegistrationSearch:
    """Filters must be ones the page offers (else BadQuery); the search text, the sort and the
    page fall back to something sane, since a person may type them in the address."""
    atelier = _one_of("atelier", {str(number): number for number in workshop_numbers})
    status = _one_of("status", {s.value: s for s in RegistrationStatus})
    lunch = _one_of("lunch", LUNCH_VALUES)
    text = SINGLE_LINE_FORBIDDEN.sub(" ", request.args.get("q", ""))[:SEARCH_MAX_LENGTH]
    sort = request.args.get("sort", "")
    page = request.args.get("page", "")
    defaults = RegistrationSearch()
    return RegistrationSearch(
        text=text.strip(),
        workshop_number=atelier,
        status=status,
        lunch=lunch,
        sort=SortKey(sort) if sort in set(SortKey) else defaults.sort,
        descending=ORDERS.get(request.args.get("order", ""), defaults.descending),
        page=int(page) if PAGE_NUMBER.fullmatch(page) else 1,
    )


def _query_args(search: RegistrationSearch, **changes) -> dict:
    """The address's parameters for this search, with some changed; defaults are left out."""
    args = {
        "q": search.text,
        "atelier": search.workshop_number,
        "status": search.status.value if search.status else None,
        "lunch": {True: "yes", False: "no"}.get(search.lunch),
        "sort": search.sort.value,
        "order": "desc" if search.descending else "asc",
        "page": search.page,
        **changes,
    }
    defaults = RegistrationSearch()
    omitted = {
        "sort": defaults.sort.value,
        "order": "desc" if defaults.descending else "asc",
        "page": 1,
    }
    return {k: v for k, v in args.items() if v not in (None, "") and omitted.get(k) != v}


def _fragment_wanted() -> bool:
    return (
        bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request
    )


@admin.get("/inscriptions", endpoint="registrations")
def registration_list():
    event = current_event()
    try:
        search = _search_from_query({w.number for w in event.workshops})
    except BadQuery:
        message = gettext(
            "Ce filtre n'existe pas (le lien est peut-être ancien). Choisissez-en un dans la liste."
        )
        return render_template("admin/registrations.html", bad_query=message), 400
    result = search_registrations(db.session, event, search)
    search = dataclasses.replace(search, page=result.page)
    context = {
        "search": search,
        "result": result,
        "link": lambda **changes: url_for("admin.registrations", **_query_args(search, **changes)),
        "SortKey": SortKey,
    }
    if _fragment_wanted():
        body = render_block("admin/registrations.html", "results", **context)
    else:
        body = render_template("admin/registrations.html", **context)
    response = current_app.make_response(body)
    response.vary.add("HX-Request")
    return response


class CancelForm(FlaskForm):
    confirm = BooleanField(
        _l("Je confirme l'annulation de cette inscription."),
        validators=[DataRequired(_l("Cochez la case pour confirmer l'annulation."))],
    )
    notify = BooleanField(_l("Envoyer l'e-mail d'annulation à la personne"), default=True)


CHOOSE_A_WORKSHOP = _l("Choisissez l'atelier de destination.")


class MoveForm(FlaskForm):
    workshop = SelectField(
        _l("Nouvel atelier"),
        coerce=whole_number,
        validators=[InputRequired(CHOOSE_A_WORKSHOP), one_of_the_choices(CHOOSE_A_WORKSHOP)],
        validate_choice=False,
    )
    override_capacity = BooleanField(
        _l("S'il est complet, augmenter sa capacité d'une place (dépasser la jauge)")
    )
    confirm = BooleanField(
        _l("Je confirme le changement d'atelier."),
        validators=[DataRequired(_l("Cochez la case pour confirmer le changement d'atelier."))],
    )

    def __init__(self, *args, registration: Registration, **kwargs):
        super().__init__(*args, **kwargs)
        self.workshop.choices = [
            SelectChoice(
                w.id, gettext("Atelier %(number)s : %(title)s", number=w.number, title=w.title)
            )
            for w in registration.event.workshops
            if w.id != registration.workshop_id
        ]

    def target(self) -> Workshop:
        return db.session.get(Workshop, self.workshop.data)


class ResendForm(FlaskForm):
    """Only the CSRF token: resending is harmless, nothing to confirm."""


def _event_registration(registration_id: int) -> Registration:
    registration = db.session.get(Registration, registration_id)
    if registration is None or registration.event_id != current_event().id:
        abort(404)
    return registration


def _details_form(registration: Registration, formdata=None) -> ParticipantDetailsForm:
    form = ParticipantDetailsForm(
        formdata=formdata,
        lunch_offered=registration.event.lunch_offered,
        data={
            "first_name": registration.first_name,
            "last_name": registration.last_name,
            "organisation": registration.organisation,
            "lunch": "yes" if registration.lunch else "no",
            "dietary": registration.dietary,
        },
    )
    return form


def _detail_context(registration: Registration, **forms) -> dict:
    context = {
        "registration": registration,
        "waitlist_position": registrations.waitlist_position(db.session, registration),
        "history": db.session.scalars(audit.entries_query(registration_id=registration.id)).all(),
        "mails": db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.registration_id == registration.id)
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        ).all(),
        "MailKind": MailKind,
    }
    if current_user.is_admin:
        context.update(
            cancel_form=forms.get("cancel_form") or CancelForm(formdata=None),
            move_form=forms.get("move_form") or MoveForm(formdata=None, registration=registration),
            resend_form=ResendForm(formdata=None),
            details_form=forms.get("details_form") or _details_form(registration),
        )
    return context


@admin.get("/inscriptions/<id:registration_id>")
def registration_detail(registration_id: int):
    registration = _event_registration(registration_id)
    return render_template("admin/registration.html", **_detail_context(registration))


def _done(registration: Registration, message: str, category: str = "success"):
    """Post/redirect/get to the detail page, with the message; htmx follows HX-Redirect."""
    flash(message, category)
    target = url_for("admin.registration_detail", registration_id=registration.id)
    if request.htmx:
        response = current_app.make_response(("", 200))
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, code=303)


def _invalid(registration: Registration, block: str, status: int = 422, **forms):
    """The action's form again with its messages: only that block for htmx."""
    context = _detail_context(registration, **forms)
    if request.htmx:
        body = render_block("admin/registration.html", block, **context)
    else:
        body = render_template("admin/registration.html", **context)
    response = current_app.make_response((body, status))
    response.vary.add("HX-Request")
    return response


@admin.post("/inscriptions/<id:registration_id>/annulation")
@admin_only
def cancel_registration(registration_id: int):
    registration = _event_registration(registration_id)
    form = CancelForm()
    if not form.validate_on_submit():
        return _invalid(registration, "cancel_action", cancel_form=form)
    try:
        promoted = registrations.cancel_registration(
            db.session,
            registration,
            audit.Actor.of(current_user),
            notify_participant=form.notify.data,
        )
        db.session.commit()
    except registrations.NothingToCancelError:
        db.session.rollback()
        return _done(registration, gettext("Cette inscription était déjà annulée."), "error")
    message = gettext("L'inscription de %(name)s est annulée.", name=registration.full_name)
    if form.notify.data:
        message += " " + gettext("Un e-mail le lui confirme.")
    if promoted:
        message += " " + ngettext(
            "La place libérée revient à la première personne en liste d'attente.",
            "Les places libérées reviennent aux %(num)s premières personnes en liste d'attente.",
            promoted,
        )
    return _done(registration, message)


@admin.post("/inscriptions/<id:registration_id>/deplacement")
@admin_only
def move_registration(registration_id: int):
    registration = _event_registration(registration_id)
    form = MoveForm(registration=registration)
    if not form.validate_on_submit():
        return _invalid(registration, "move_action", move_form=form)
    target = form.target()
    try:
        result = registrations.move_registration(
            db.session,
            audit.Actor.of(current_user),
            registration,
            target,
            override_capacity=form.override_capacity.data,
        )
        db.session.commit()
    except registrations.WorkshopFullError:
        db.session.rollback()
        form.workshop.errors = [
            gettext(
                "L'atelier %(number)s est complet : rien n'a changé. Pour y placer cette personne "
                "malgré tout, cochez « augmenter sa capacité ».",
                number=target.number,
            )
        ]
        return _invalid(registration, "move_action", status=409, move_form=form)
    except registrations.AlreadyInWorkshopError:
        db.session.rollback()
        return _done(
            registration, gettext("Cette personne est déjà dans cet atelier : rien n'a changé.")
        )
    except registrations.RegistrationCancelledError:
        db.session.rollback()
        return _done(
            registration, gettext("Une inscription annulée ne change plus d'atelier."), "error"
        )
    if result.seated:
        message = gettext(
            "%(name)s est maintenant dans l'atelier %(number)s.",
            name=registration.full_name,
            number=target.number,
        )
    else:
        message = gettext(
            "%(name)s est maintenant sur la liste d'attente de l'atelier %(number)s, "
            "en position %(position)s.",
            name=registration.full_name,
            number=target.number,
            position=result.waitlist_position,
        )
    if result.capacity_raised:
        message += " " + gettext(
            "Sa capacité passe à %(capacity)s places.", capacity=target.capacity
        )
    if result.promoted:
        message += " " + gettext(
            "La place libérée revient à la première personne en liste d'attente."
        )
    message += " " + gettext("Un e-mail lui annonce son nouvel atelier.")
    return _done(registration, message)


@admin.post("/inscriptions/<id:registration_id>/renvoi")
@admin_only
def resend_confirmation(registration_id: int):
    registration = _event_registration(registration_id)
    form = ResendForm()
    if not form.validate_on_submit():
        abort(400)
    queued = registrations.resend_confirmation(
        db.session, audit.Actor.of(current_user), registration
    )
    db.session.commit()
    if not queued:
        return _done(
            registration,
            gettext("Cet e-mail vient d'être renvoyé : il part dans un instant."),
        )
    return _done(
        registration,
        gettext("L'e-mail est renvoyé à %(email)s.", email=registration.email),
    )


@admin.post("/inscriptions/<id:registration_id>/modification")
@admin_only
def update_registration(registration_id: int):
    registration = _event_registration(registration_id)
    form = _details_form(registration, formdata=request.form)
    if not form.validate_on_submit():
        return _invalid(registration, "details_action", details_form=form)
    changed = registrations.update_details(
        db.session,
        audit.Actor.of(current_user),
        registration,
        registrations.ParticipantDetails(
            first_name=form.first_name.data,
            last_name=form.last_name.data,
            organisation=form.organisation.data or None,
            lunch=bool(form.lunch and form.lunch.data == "yes"),
            dietary=form.dietary.data or None,
        ),
    )
    db.session.commit()
    if not changed:
        return _done(registration, gettext("Rien à enregistrer : aucune donnée n'a changé."))
    return _done(
        registration,
        gettext("Les données de %(name)s sont corrigées.", name=registration.full_name),
    )
