"""Renders each e-mail the product sends, in the participant's language."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import icalendar
from flask import render_template
from flask_babel import force_locale, gettext

from .checkin import QR_CODE_SOURCE, mail_checkin_url
from .formatting import locale_for
from .links import public_host, public_url
from .models import MailKind, Registration, RegistrationStatus

# The kinds of message, each with its subject.
SUBJECTS = {
    MailKind.CONFIRMATION: lambda event: gettext(
        "Inscription confirmée : %(title)s", title=event.title
    ),
    MailKind.WAITLISTED: lambda event: gettext("Liste d'attente : %(title)s", title=event.title),
    MailKind.PROMOTED: lambda event: gettext("Une place pour vous : %(title)s", title=event.title),
    MailKind.MANAGEMENT_LINK: lambda event: gettext(
        "Votre inscription : %(title)s", title=event.title
    ),
    MailKind.REMINDER: lambda event: gettext("Rappel : %(title)s", title=event.title),
    MailKind.CANCELLED: lambda event: gettext("Inscription annulée : %(title)s", title=event.title),
}


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body_text: str
    body_html: str
    calendar: str | None


def render_registration_message(
    kind: MailKind,
    registration: Registration,
    waitlist_position: int | None = None,
    withdraw_calendar: bool = False,
    note: str | None = None,
    workshop_changed: bool = False,
) -> RenderedMessage:
    """Mails to a seated participant carry the day's calendar entry; with `withdraw_calendar`,
    a cancellation carries the entry that takes it out of their calendar. `note`, an
    organiser's plain text, goes above the standard text, paragraph by paragraph."""
    event = registration.event
    with force_locale(locale_for(registration.language)):
        context = {
            "kind": kind,
            "MailKind": MailKind,
            "registration": registration,
            "event": event,
            "checkin_url": mail_checkin_url(kind, registration),
            "checkin_qr_source": QR_CODE_SOURCE,
            "workshop": registration.workshop,
            "waitlist_position": waitlist_position,
            "note_paragraphs": note_paragraphs(note),
            "workshop_changed": workshop_changed,
            "manage_url": public_url("public.manage", token=registration.manage_token),
        }
        return RenderedMessage(
            subject=SUBJECTS[kind](event),
            body_text=render_template("mail/registration.txt", **context),
            body_html=render_template("mail/registration.html", **context),
            calendar=(
                calendar_for(registration)
                if registration.status is RegistrationStatus.CONFIRMED or withdraw_calendar
                else None
            ),
        )


def note_paragraphs(note: str | None) -> list[list[str]]:
    """The note's paragraphs (separated by blank lines), each as its lines."""
    paragraphs = re.split(r"\n\s*\n", (note or "").replace("\r\n", "\n").strip())
    return [
        [line.rstrip() for line in paragraph.split("\n")] for paragraph in paragraphs if paragraph
    ]


def calendar_for(registration: Registration) -> str:
    """The registration's entry in the participant's calendar (RFC 5546): PUBLISH adds it; once
    the registration is cancelled, CANCEL with the same UID and a higher SEQUENCE removes it."""
    event = registration.event
    workshop = registration.workshop
    cancelled = registration.status is RegistrationStatus.CANCELLED
    entry = icalendar.Event()
    entry.add("uid", f"registration-{registration.manage_token[:16]}@{public_host()}")
    entry.add("sequence", 1 if cancelled else 0)
    entry.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    entry.add("dtstamp", datetime.now(tz=event.zone))
    if cancelled:
        entry.add("attendee", f"mailto:{registration.email}")
    room = f" ({workshop.room})" if workshop.room else ""
    entry.add(
        "description",
        gettext("Atelier %(number)s : %(title)s", number=workshop.number, title=workshop.title)
        + room
        + "\n"
        + public_url("public.manage", token=registration.manage_token),
    )
    frame = _event_calendar(
        cancelled,
        event.title,
        event.organiser or event.title,
        event.contact_email,
        event.starts_at,
        event.ends_at,
        event.place,
        public_url("public.programme"),
    )
    # The entry's own lines, as icalendar escapes and folds them, without BEGIN and END.
    own_lines = entry.to_ical().decode().split("\r\n", 1)[1].rsplit("END:VEVENT", 1)[0]
    return frame.replace(f"{REGISTRATION_LINES}:\r\n", own_lines, 1)


# Stands in the event's calendar for the lines of each registration's entry.
REGISTRATION_LINES = "X-ATELIER-REGISTRATION"


@functools.lru_cache(maxsize=32)
def _event_calendar(
    cancelled: bool,
    title: str,
    organiser: str,
    contact_email: str,
    starts_at: datetime,
    ends_at: datetime,
    place: str,
    programme_url: str,
) -> str:
    """What every registration's calendar of this event shares, made once per process: the
    time zone's rules alone take milliseconds to compute and write out."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Atelier//journee-etude//FR")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
    entry = icalendar.Event()
    entry.add(REGISTRATION_LINES, "")
    entry.add("organizer", f"mailto:{contact_email}", parameters={"cn": organiser})
    entry.add("dtstart", starts_at)
    entry.add("dtend", ends_at)
    entry.add("summary", title)
    entry.add("location", place)
    entry.add("url", programme_url)
    calendar.add_component(entry)
    calendar.add_missing_timezones(first_date=starts_at - timedelta(days=1))
    return calendar.to_ical().decode()
