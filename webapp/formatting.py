"""Dates and times shown the way each language writes them (fr_BE, en_GB)."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from babel.dates import format_datetime as babel_format_datetime
from flask_babel import format_date, format_time, get_locale, gettext

from .models import Registration, RegistrationStatus

LOCALES = {"fr": "fr_BE", "en": "en_GB"}


def locale_for(language: str) -> str:
    return LOCALES.get(language, LOCALES["fr"])


def clock(at: time | datetime) -> str:
    """9h, 9h30 in French (as the programme writes them); 09:30 in English. A datetime is shown
    at its own offset: pass it in the event's time zone (Flask-Babel would move it to UTC)."""
    pattern = ("H'h'" if at.minute == 0 else "H'h'mm") if get_locale().language == "fr" else "HH:mm"
    return format_time(at, pattern, rebase=False)


def long_date(day: date | datetime) -> str:
    """A datetime is shown on its own calendar day: pass it in the event's time zone
    (Flask-Babel would otherwise move it to UTC, and midnight in Brussels to the day before)."""
    if isinstance(day, datetime):
        day = day.date()
    if get_locale().language == "fr" and day.day == 1:
        return format_date(day, "EEEE d'er' MMMM y")  # « samedi 1er mai », as French writes it
    return format_date(day, "full")


def local_datetime(at: datetime, zone: ZoneInfo) -> str:
    """A moment as a short date and time where it happened (the event's time zone), not in UTC
    as Flask-Babel would show it."""
    return babel_format_datetime(at, "d MMM y, HH:mm", tzinfo=zone, locale=get_locale())


def registration_status(registration: Registration, waitlist_position: int | None = None) -> str:
    """A plain string, so that HTML pages escape it and text e-mails keep it as it is."""
    if registration.status is RegistrationStatus.CONFIRMED:
        return gettext("Confirmée")
    if registration.status is RegistrationStatus.WAITLISTED and waitlist_position:
        return gettext("Liste d'attente, position %(position)s", position=waitlist_position)
    if registration.status is RegistrationStatus.WAITLISTED:
        return gettext("Liste d'attente")
    return gettext("Annulée")


def register_filters(app) -> None:
    app.add_template_filter(clock)
    app.add_template_filter(long_date)
    app.add_template_filter(local_datetime)
    app.jinja_env.globals["registration_status"] = registration_status
