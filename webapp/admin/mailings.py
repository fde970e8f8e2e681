"""Mailings: audience, note, preview, confirmation, progress; past mailings."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeSerializer
from jinja2_fragments.flask import render_block
from wtforms import RadioField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from .. import audit, mailings, reminders
from ..checkin import mail_checkin_url, with_qr_code_shown
from ..errors import error_page
from ..events import current_event
from ..extensions import db
from ..forms import (
    CHOOSE_A_WORKSHOP,
    MULTI_LINE_FORBIDDEN,
    one_of_the_choices,
    without_control_characters,
)
from ..models import Event, Mailing, MailingAudience, MailKind, Workshop
from . import admin

PROGRESS_POLL_SECONDS = 2
# htmx stops polling when the answer has this status.
STOP_POLLING = 286

CHOOSE_AN_AUDIENCE = _l("Choisissez les destinataires.")
NOBODY_TO_WRITE_TO = _l(
    "Personne ne correspond à ces destinataires pour l'instant : il n'y a rien à envoyer."
)
STALE_PREVIEW = _l("Cet aperçu n'est plus valable. Prévisualisez l'envoi à nouveau.")
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _as_plain_lines(value):
    if not isinstance(value, str):
        return value
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


class MailingForm(FlaskForm):
    audience = RadioField(
        _l("Destinataires"),
        validators=[InputRequired(CHOOSE_AN_AUDIENCE), one_of_the_choices(CHOOSE_AN_AUDIENCE)],
        validate_choice=False,
    )
    workshop = SelectField(_l("Atelier"), validate_choice=False)
    note = TextAreaField(
        _l("Note (facultative)"),
        description=_l(
            "Elle apparaît au-dessus du texte habituel du rappel. Texte simple ; une ligne vide "
            "sépare deux paragraphes."
        ),
        filters=[_as_plain_lines],
        validators=[
            Optional(),
            Length(
                max=mailings.NOTE_MAX_LENGTH,
                message=_l("La note fait 2\u00a0000 caractères au maximum."),
            ),
            without_control_characters(MULTI_LINE_FORBIDDEN),
        ],
    )

    def __init__(self, *args, event: Event, sizes: mailings.AudienceSizes, **kwargs):
        super().__init__(*args, **kwargs)
        self.workshops_by_id = {str(workshop.id): workshop for workshop in event.workshops}
        self.audience.choices = [
            SelectChoice(
                MailingAudience.CONFIRMED.value,
                ngettext(
                    "Tous les participant·e·s confirmé·e·s (%(num)d personne)",
                    "Tous les participant·e·s confirmé·e·s (%(num)d personnes)",
                    sizes.confirmed,
                ),
            ),
            SelectChoice(
                MailingAudience.WORKSHOP.value,
                gettext("Les participant·e·s confirmé·e·s d'un atelier (choisi ci-dessous)"),
            ),
            SelectChoice(
                MailingAudience.WAITING.value,
                ngettext(
                    "La liste d'attente (%(num)d personne)",
                    "La liste d'attente (%(num)d personnes)",
                    sizes.waiting,
                ),
            ),
        ]
        self.workshop.choices = [SelectChoice("", gettext("Choisissez un atelier"))] + [
            SelectChoice(
                str(workshop.id),
                ngettext(
                    "Atelier %(number)s : %(title)s (%(num)d confirmé·e)",
                    "Atelier %(number)s : %(title)s (%(num)d confirmé·e·s)",
                    sizes.confirmed_per_workshop.get(workshop.id, 0),
                    number=workshop.number,
                    title=workshop.title,
                ),
            )
            for workshop in event.workshops
        ]

    @property
    def chosen_audience(self) -> MailingAudience:
        return MailingAudience(self.audience.data)

    @property
    def chosen_workshop(self) -> Workshop | None:
        if self.audience.data != MailingAudience.WORKSHOP:
            return None
        return self.workshops_by_id.get(self.workshop.data)

    def validate_workshop(self, field):
        if self.audience.data == MailingAudience.WORKSHOP and self.chosen_workshop is None:
            raise ValidationError(CHOOSE_A_WORKSHOP)


def _mailing_form(event: Event, formdata=None, **data) -> MailingForm:
    return MailingForm(
        formdata=formdata, event=event, sizes=mailings.audience_sizes(db.session, event), **data
    )


@dataclass(frozen=True)
class Draft:
    """A previewed mailing, signed into the preview's links and its confirmation form, so that
    what is confirmed is exactly what was shown."""

    audience: MailingAudience
    workshop: Workshop | None
    note: str | None
    key: str


def _drafts() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="mailing-draft")


def _signed_draft(form: MailingForm) -> str:
    workshop = form.chosen_workshop
    return _drafts().dumps(
        {
            "audience": form.chosen_audience.value,
            "workshop": workshop.id if workshop else None,
            "note": form.note.data or None,
            "key": secrets.token_urlsafe(24),
        }
    )


def _draft_from(event: Event, token) -> Draft | None:
    """The draft signed into `token`, or None if it is not ours or no longer fits the event."""
    try:
        data = _drafts().loads(token if isinstance(token, str) else "")
    except BadSignature:
        return None
    workshop = next((w for w in event.workshops if w.id == data["workshop"]), None)
    if data["workshop"] is not None and workshop is None:
        return None
    if not KEY_PATTERN.fullmatch(data["key"]):
        return None
    return Draft(MailingAudience(data["audience"]), workshop, data["note"], data["key"])


def _render_page(event: Event, form: MailingForm, status: int = 200, **context):
    return render_template(
        "admin/mailings.html",
        form=form,
        note_max_length=mailings.NOTE_MAX_LENGTH,
        past_mailings=mailings.past_mailings(db.session, event),
        reminder_at=reminders.reminder_moment(event).astimezone(event.zone),
        reminder_progress=reminders.automatic_reminder_progress(db.session, event),
        **context,
    ), status


@admin.get("/envois", endpoint="mailings")
def mailings_page():
    event = current_event()
    return _render_page(event, _mailing_form(event))


@admin.post("/envois/apercu")
def mailings_preview():
    event = current_event()
    # Form fields only: a JSON body would hand the validators numbers and objects.
    form = _mailing_form(event, request.form)
    if not form.validate():
        return _render_page(event, form, 422)
    try:
        preview = mailings.preview(
            db.session, event, form.chosen_audience, form.chosen_workshop, form.note.data
        )
    except mailings.NoRecipientsError:
        form.form_errors.append(NOBODY_TO_WRITE_TO)
        return _render_page(event, form, 422)
    return _render_page(event, form, preview=preview, draft=_signed_draft(form))


# The e-mail's HTML is shown as it will be sent, inline styles included, in a sandboxed frame:
# its own policy lets those styles apply and nothing else (no script, no request), and only
# our pages may frame it.
PREVIEW_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'self'",
        "sandbox",
    ]
)


@admin.get("/envois/apercu/message")
def mailings_preview_message():
    event = current_event()
    draft = _draft_from(event, request.args.get("brouillon"))
    if draft is None:
        return _framed(str(STALE_PREVIEW), 400, "text/plain")
    try:
        preview = mailings.preview(db.session, event, draft.audience, draft.workshop, draft.note)
    except mailings.NoRecipientsError:
        return _framed(str(NOBODY_TO_WRITE_TO), 409, "text/plain")
    qr_code_url = mail_checkin_url(MailKind.REMINDER, preview.recipient)
    return _framed(with_qr_code_shown(preview.message.body_html, qr_code_url), 200, "text/html")


def _framed(body: str, status: int, mimetype: str):
    response = current_app.response_class(body, status, mimetype=mimetype)
    response.headers["Content-Security-Policy"] = PREVIEW_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@admin.post("/envois")
def mailings_send():
    event = current_event()
    draft = _draft_from(event, request.form.get("brouillon"))
    if draft is None:
        return error_page(400, str(STALE_PREVIEW))
    try:
        result = mailings.send_mailing(
            db.session,
            audit.Actor.of(current_user),
            event,
            draft.audience,
            draft.workshop,
            draft.note,
            draft.key,
        )
    except mailings.NoRecipientsError:
        form = _mailing_form(
            event,
            audience=draft.audience.value,
            workshop=str(draft.workshop.id) if draft.workshop else "",
            note=draft.note,
        )
        form.form_errors.append(NOBODY_TO_WRITE_TO)
        return _render_page(event, form, 422)
    db.session.commit()
    if result.created:
        flash(
            ngettext(
                "%(num)d message en file d'envoi.",
                "%(num)d messages en file d'envoi.",
                result.queued,
            ),
            "success",
        )
    else:
        flash(gettext("Cet envoi était déjà confirmé : rien de plus n'a été envoyé."), "success")
    return redirect(url_for("admin.mailings_progress", mailing_id=result.mailing.id), code=303)


@admin.get("/envois/<id:mailing_id>")
def mailings_progress(mailing_id: int):
    event = current_event()
    mailing = db.session.get(Mailing, mailing_id)
    if mailing is None or mailing.event_id != event.id:
        abort(404)
    progress = mailings.mailing_progress(db.session, mailing)
    context = {
        "mailing": mailing,
        "progress": progress,
        "failures": mailings.failed_messages(db.session, mailing) if progress.failed else [],
        "poll_seconds": PROGRESS_POLL_SECONDS,
    }
    if request.htmx and not request.htmx.boosted:
        body = render_block("admin/mailing.html", "progress", **context)
        response = current_app.make_response((body, STOP_POLLING if progress.done else 200))
    else:
        response = current_app.make_response(render_template("admin/mailing.html", **context))
    response.vary.add("HX-Request")
    return response
