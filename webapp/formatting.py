"""Dates and times shown the way each language writes them (fr_BE, en_GB)."""

from datetime import date, datetime, time

from flask_babel import format_date, format_datetime, format_time, get_locale, gettext

from .models import Event, Registration, RegistrationStatus

LOCALES = {"fr": "fr_BE", "en": "en_GB"}


def locale_for(language: str) -> str:
    return LOCALES.get(language, LOCALES["fr"])


def clock(at: time | datetime) -> str:
    """9h, 9h30 in French (as the programme writes them); 09:30 in English."""
    if get_locale().language == "fr":
        return format_time(at, "H'h'" if at.minute == 0 else "H'h'mm")
    return format_time(at, "HH:mm")


def long_date(day: date | datetime) -> str:
    """A datetime is shown on its own calendar day: pass it in the event's time zone
    (Flask-Babel would otherwise move it to UTC, and midnight in Brussels to the day before)."""
    if isinstance(day, datetime):
        day = day.date()
    if get_locale().language == "fr" and day.day == 1:
        return format_date(day, "EEEE d'er' MMMM y")  # « samedi 1er mai », as French writes it
    return format_date(day, "full")


def event_time(at: datetime, event: Event) -> str:
    """A moment as the clocks at the event show it (Flask-Babel would show it in UTC)."""
    return format_datetime(at.astimezone(event.zone), "short", rebase=False)


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
    app.add_template_filter(event_time)
    app.jinja_env.globals["registration_status"] = registration_status
