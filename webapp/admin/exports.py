"""Exports: CSV of the registrations, printable attendance sheets."""

from __future__ import annotations

from flask import current_app, render_template, request, stream_with_context
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from werkzeug.utils import secure_filename
from wtforms import Form, RadioField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf

from ..errors import error_page
from ..events import current_event
from ..exports import SEPARATORS, registrations_csv
from ..extensions import db
from ..models import Event
from ..roster import by_last_name, event_roster
from . import admin, admin_only

EVERY_WORKSHOP = ""


class ExportForm(Form):
    """What to export; read from the query string (a download changes nothing: no CSRF)."""

    workshop = SelectField(_l("Inscriptions"), default=EVERY_WORKSHOP, validate_choice=False)
    separator = RadioField(
        _l("Séparateur"),
        choices=[
            SelectChoice(";", _l("Point-virgule (;) : Excel en français, en Belgique")),
            SelectChoice(",", _l("Virgule (,) : Excel en anglais, autres tableurs")),
        ],
        default=";",
        validators=[AnyOf(SEPARATORS, message=_l("Choisissez le point-virgule ou la virgule."))],
        validate_choice=False,
    )

    def __init__(self, event: Event, formdata=None):
        super().__init__(formdata)
        self.workshop.choices = [
            SelectChoice(EVERY_WORKSHOP, _l("Toutes les inscriptions")),
            *(
                SelectChoice(
                    str(w.number),
                    gettext("Atelier %(number)s : %(title)s", number=w.number, title=w.title),
                )
                for w in event.workshops
            ),
        ]
        self.workshop.validators = [
            AnyOf(
                [choice.value for choice in self.workshop.choices],
                message=_l("Choisissez toutes les inscriptions ou un atelier de la liste."),
            )
        ]

    @property
    def workshop_number(self) -> int | None:
        return int(self.workshop.data) if self.workshop.data else None


@admin.get("/exports")
@admin_only
def exports():
    event = current_event()
    return render_template("admin/exports.html", form=ExportForm(event))


@admin.get("/exports/inscriptions.csv")
@admin_only
def exports_csv():
    """Live registrations only: the cancelled hold no seat, and the organisers need no copy of
    the data of people who withdrew."""
    event = current_event()
    form = ExportForm(event, request.args)
    if not form.validate():
        return render_template("admin/exports.html", form=form), 400
    number = form.workshop_number
    roster = event_roster(db.session, event, number)
    name = f"inscriptions-{event.slug}" + (f"-atelier-{number}" if number else "")
    response = current_app.response_class(
        stream_with_context(registrations_csv(roster, form.separator.data)),
        content_type="text/csv; charset=utf-8",
    )
    response.headers.set(
        "Content-Disposition", "attachment", filename=secure_filename(name + ".csv")
    )
    return response


@admin.get("/exports/emargement/<id:number>")
@admin_only
def exports_attendance_sheet(number: int):
    event = current_event()
    roster = event_roster(db.session, event, number)
    if not roster.workshops:
        return error_page(404, gettext("L'atelier %(number)s n'existe pas.", number=number))
    workshop_roster = roster.workshops[0]
    return render_template(
        "admin/attendance_sheet.html",
        workshop=workshop_roster.workshop,
        participants=by_last_name(workshop_roster.seated),
    )
