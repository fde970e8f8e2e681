"""Spreadsheet exports of the roster: one CSV row per live registration, safe to open in Excel."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime

from flask_babel import gettext

from .formatting import registration_status
from .roster import EventRoster

SEPARATORS = (";", ",")

# A spreadsheet runs a cell starting with one of these as a formula (=HYPERLINK, =cmd|…, +, -,
# @SUM); tab and carriage return let one slip past a naive check. defusedcsv misses those two
# and rewrites "|" inside the text, so we prefix the cell with an apostrophe ourselves, as OWASP
# recommends: the spreadsheet then shows it as text.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(cell: object) -> object:
    """The cell as a spreadsheet will show it as text, never run it. Numbers stay numbers."""
    if isinstance(cell, str) and cell.startswith(FORMULA_TRIGGERS):
        return "'" + cell
    return cell


class _Line:
    """A file for csv.writer that hands back each line instead of keeping it."""

    def write(self, line: str) -> str:
        return line


def registrations_csv(roster: EventRoster, separator: str) -> Iterator[str]:
    """The roster's registrations as CSV text, line by line: the byte-order mark first, so that
    Excel reads UTF-8, then a header row and one row per registration."""
    event = roster.event
    writer = csv.writer(_Line(), delimiter=separator)
    yield "\ufeff"
    header = [
        gettext("Atelier"),
        gettext("Titre de l'atelier"),
        gettext("Statut"),
        gettext("Position d'attente"),
        gettext("Prénom"),
        gettext("Nom"),
        gettext("E-mail"),
        gettext("Organisation"),
        *([gettext("Lunch")] if event.lunch_offered else []),
        gettext("Régime alimentaire"),
        gettext("Inscription"),
        gettext("Arrivée"),
    ]
    yield writer.writerow(header)
    for workshop_roster in roster.workshops:
        workshop = workshop_roster.workshop
        places = [(r, None) for r in workshop_roster.seated] + [
            (r, position) for position, r in enumerate(workshop_roster.waiting, start=1)
        ]
        for registration, waiting_position in places:
            row = [
                workshop.number,
                workshop.title,
                registration_status(registration),
                waiting_position,
                registration.first_name,
                registration.last_name,
                registration.email,
                registration.organisation,
                *(
                    [gettext("Oui") if registration.lunch else gettext("Non")]
                    if event.lunch_offered
                    else []
                ),
                registration.dietary,
                _local(registration.created_at, event),
                _local(registration.checked_in_at, event),
            ]
            yield writer.writerow([neutralised(cell) for cell in row])


def _local(moment: datetime | None, event) -> str | None:
    """A date and time in the event's time zone, in the form spreadsheets read as one."""
    return moment.astimezone(event.zone).strftime("%Y-%m-%d %H:%M") if moment else None
