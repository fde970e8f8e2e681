"""The audit log: every change, who made it and when, with filters."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import current_app, render_template, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from jinja2_fragments.flask import render_block
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, Regexp

from .. import audit
from ..audit import AuditAction
from ..events import find_current_event
from ..extensions import db
from ..forms import SINGLE_LINE_FORBIDDEN, _strip, one_of_the_choices, without_control_characters
from ..models import RegistrationStatus, Role
from . import admin

ENTRIES_PER_PAGE = 50

# Every action the application records (a test checks that none is missing).
ACTION_LABELS = {
    AuditAction.REGISTRATION_CREATED: _l("Inscription"),
    AuditAction.REGISTRATION_CANCELLED: _l("Annulation"),
    AuditAction.REGISTRATION_PROMOTED: _l("Place obtenue depuis la liste d'attente"),
    AuditAction.REGISTRATION_MOVED: _l("Changement d'atelier"),
    AuditAction.REGISTRATION_UPDATED: _l("Inscription modifiée"),
    AuditAction.REGISTRATION_CHECKED_IN: _l("Arrivée enregistrée"),
    AuditAction.REGISTRATION_CHECK_IN_UNDONE: _l("Arrivée annulée"),
    AuditAction.REGISTRATION_MAIL_RESENT: _l("Confirmation renvoyée"),
    AuditAction.WORKSHOP_CAPACITY_CHANGED: _l("Capacité d'un atelier modifiée"),
    AuditAction.EVENT_LOADED: _l("Fichier de l'événement chargé"),
    AuditAction.EVENT_REGISTRATION_CLOSED: _l("Inscriptions fermées"),
    AuditAction.EVENT_REGISTRATION_REOPENED: _l("Inscriptions rouvertes"),
    AuditAction.EVENT_PURGED: _l("Inscriptions effacées après la journée"),
    AuditAction.MAILING_SENT: _l("Envoi aux participant·e·s"),
    AuditAction.MAIL_RETRIED: _l("Nouvel essai d'envoi d'un e-mail"),
    AuditAction.USER_CREATED: _l("Compte créé"),
    AuditAction.USER_ENABLED: _l("Compte réactivé"),
    AuditAction.USER_DISABLED: _l("Compte désactivé"),
    AuditAction.USER_LOGIN: _l("Connexion au tableau de bord"),
    AuditAction.USER_PASSWORD_CHANGED: _l("Mot de passe changé"),
}

FIELD_LABELS = {
    "status": _l("Statut"),
    "workshop": _l("Atelier"),
    "capacity": _l("Capacité"),
    "lunch": _l("Lunch"),
    "dietary": _l("Régime alimentaire"),
    "active": _l("Actif"),
    "role": _l("Rôle"),
    "email": _l("Adresse e-mail"),
    "first_name": _l("Prénom"),
    "last_name": _l("Nom"),
    "organisation": _l("Organisation"),
    "checked_in_at": _l("Arrivée"),
    "kind": _l("E-mail"),
    "audience": _l("Destinataires"),
    "mailing": _l("Envoi"),
    "promoted": _l("Places données à la liste d'attente"),
    "registration_closes": _l("Fin des inscriptions"),
    "state": _l("État"),
    "last_error": _l("Dernière erreur"),
}

VALUE_LABELS = {
    RegistrationStatus.CONFIRMED.value: _l("confirmée"),
    RegistrationStatus.WAITLISTED.value: _l("liste d'attente"),
    RegistrationStatus.CANCELLED.value: _l("annulée"),
    Role.ORGANISER.value: _l("organisateur·rice"),
    Role.ADMIN.value: _l("admin"),
}

ANY_ACTION = ""


def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))


def actor_label(actor: str) -> str:
    """Who acted, as a reader says it: an account's e-mail and role, a participant, a terminal."""
    kind, _, name = actor.partition(":")
    if kind == Role.ADMIN:
        return gettext("%(email)s (admin)", email=name)
    if kind == Role.ORGANISER:
        return gettext("%(email)s (organisateur·rice)", email=name)
    if kind == "cli":
        return gettext("Terminal (%(user)s)", user=name)
    if actor == audit.PARTICIPANT.label:
        return gettext("La personne inscrite")
    if actor == audit.SYSTEM.label:
        return gettext("Automatique")
    return actor


def field_label(field: str) -> str:
    return str(FIELD_LABELS.get(field, field))


def value_label(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return gettext("oui") if value else gettext("non")
    return str(VALUE_LABELS.get(value, value)) if isinstance(value, str) else str(value)


class LogFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a search: it changes nothing

    action = SelectField(
        _l("Action"),
        validators=[one_of_the_choices(_l("Choisissez une action de la liste."))],
        validate_choice=False,
        default=ANY_ACTION,
    )
    actor = StringField(
        _l("Qui (une partie de l'adresse)"),
        filters=[_strip],
        validators=[
            Optional(),
            Length(max=340, message=_l("340 caractères au maximum.")),
            without_control_characters(SINGLE_LINE_FORBIDDEN),
        ],
    )
    registration = StringField(
        _l("N° d'inscription"),
        filters=[_strip],
        validators=[
            Optional(),
            Regexp(r"^\d{1,9}$", message=_l("Indiquez un numéro d'inscription (en chiffres).")),
        ],
    )

    def __init__(self, *args, actions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.action.choices = [SelectChoice(ANY_ACTION, _l("Toutes"))] + [
            SelectChoice(action, action_label(action)) for action in actions
        ]


def _page_number() -> int:
    return request.args.get("page", 1, type=int)


@admin.context_processor
def audit_entry_presentation():
    """How the journal and a registration's history show an entry (admin/_audit_entries.html)."""
    return {
        "action_label": action_label,
        "actor_label": actor_label,
        "field_label": field_label,
        "value_label": value_label,
        "changes": audit.changes,
    }


@admin.get("/journal")
def audit_log():
    event = find_current_event()
    form = LogFilterForm(request.args, actions=audit.actions_in_log(db.session, event))
    entries = None
    if form.validate():
        query = audit.entries_query(
            event,
            action=form.action.data or None,
            actor=form.actor.data or None,
            registration_id=int(form.registration.data) if form.registration.data else None,
            with_account_changes=True,
        )
        entries = audit.entries_page(db.session, query, _page_number(), ENTRIES_PER_PAGE)
    context = {
        "form": form,
        "entries": entries,
        "zone": event.zone if event else ZoneInfo("UTC"),
        "filters": {field.name: field.data for field in form if field.data},
    }
    # 422 as for any form with errors: htmx swaps it in, with the message.
    status = 200 if entries is not None else 422
    if request.htmx and not request.htmx.boosted:
        body = render_block("admin/audit_log.html", "results", **context)
    else:
        body = render_template("admin/audit_log.html", **context)
    response = current_app.make_response((body, status))
    response.vary.add("HX-Request")
    return response
