"""Loads an event, its programme and its workshops from a TOML file."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audit
from .models import Event, ProgrammeItem, Registration, Workshop
from .workshops import (
    MAX_CAPACITY,
    CapacityBelowSeatsError,
    change_capacity,
    default_registration_closes,
)


class EventFileError(Exception):
    """The file cannot be loaded as it is; the message says why."""


DATE_SHIFT = re.compile(r"^\+(\d+)d$")


def resolve_date(value: str, today: date) -> date:
    """`+30d` (30 days from today) or an ISO date."""
    shift = DATE_SHIFT.match(value.strip())
    if shift:
        try:
            return today + timedelta(days=int(shift.group(1)))
        except OverflowError as error:
            raise EventFileError(f"--date: {value} is too far ahead") from error
    try:
        return date.fromisoformat(value.strip())
    except ValueError as error:
        raise EventFileError(f"--date: expected +Nd or YYYY-MM-DD, got {value!r}") from error


def read_event_file(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as error:
        raise EventFileError(f"{path}: no such file") from error
    except tomllib.TOMLDecodeError as error:
        raise EventFileError(f"{path}: not valid TOML ({error})") from error


def _required(table: dict, key: str, where: str):
    if key not in table or table[key] in ("", None):
        raise EventFileError(f"{where}: missing key {key!r}")
    return table[key]


def _text(table: dict, key: str, where: str, max_length: int | None = None, required=False):
    """A string value (or None when absent and not required), within its column's length."""
    value = _required(table, key, where) if required else table.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventFileError(f"{where} {key}: expected a string, got {value!r}")
    if max_length and len(value) > max_length:
        raise EventFileError(f"{where} {key}: {max_length} characters at most")
    return value


LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")


def _language(info: dict) -> str:
    language = _text(info, "language", "[event]", 16) or "fr"
    if not LANGUAGE_TAG.fullmatch(language):
        raise EventFileError(
            f"[event] language: a language tag such as fr or nl-BE, got {language!r}"
        )
    return language


PROGRAMME_KINDS = {"plenary", "workshops", "break", "round-table", "closing", "social"}


def _clock(value, where: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError as error:
        raise EventFileError(f"{where}: expected a time HH:MM, got {value!r}") from error


def _day(value, where: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as error:
        raise EventFileError(f"{where}: expected a date YYYY-MM-DD, got {value!r}") from error


def _moment(value, zone: ZoneInfo, where: str) -> datetime:
    """A local date or date-time of the event's time zone, as UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError as error:
            raise EventFileError(f"{where}: expected YYYY-MM-DD[THH:MM], got {value!r}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


class LoadedEvent(NamedTuple):
    event: Event
    # Waiting participants who got a seat that a larger capacity opened.
    promoted: int


def load_event(
    session: Session,
    data: dict,
    move_to: date | None = None,
    actor: audit.Actor = audit.SYSTEM,
) -> LoadedEvent:
    """Creates or updates the event named by its slug. Registrations are never deleted, and a
    capacity below the seats already taken is refused. Audited; the caller commits."""
    info = _required(data, "event", "file")
    if not isinstance(info, dict):
        raise EventFileError("[event] must be a table")
    for key in ("programme", "workshops"):
        if not isinstance(data.get(key, []), list) or not all(
            isinstance(item, dict) for item in data.get(key, [])
        ):
            raise EventFileError(f"[[{key}]] must be an array of tables")
    questions = info.get("questions", [])
    if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
        raise EventFileError("[event] questions must be a list of strings")
    slug = _text(info, "slug", "[event]", 80, required=True)
    zone_name = _text(info, "timezone", "[event]", 64) or "Europe/Brussels"
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise EventFileError(f"[event] timezone: unknown time zone {zone_name!r}") from error

    real_date = _day(_required(info, "date", "[event]"), "[event] date")
    day = move_to or real_date
    shift = day - real_date

    event = session.scalar(select(Event).where(Event.slug == slug)) or Event(slug=slug)
    event.title = _text(info, "title", "[event]", 300, required=True)
    event.kicker = _text(info, "kicker", "[event]", 200)
    event.organiser = _text(info, "organiser", "[event]", 300)
    for key in ("context", "tagline", "intro", "questions_outro", "registration_note"):
        setattr(event, key, _text(info, key, "[event]"))
    event.questions = questions
    event.date = day
    event.original_date = real_date if shift else None
    event.starts = _clock(_required(info, "starts", "[event]"), "[event] starts")
    event.ends = _clock(_required(info, "ends", "[event]"), "[event] ends")
    if event.ends <= event.starts:
        raise EventFileError("[event]: ends must come after starts")
    event.timezone = zone_name
    event.language = _language(info)
    event.venue = _text(info, "venue", "[event]", 300, required=True)
    event.address = _text(info, "address", "[event]", 500, required=True)
    event.contact_email = _text(info, "contact_email", "[event]", 320, required=True)
    if not isinstance(info.get("lunch", True), bool):
        raise EventFileError("[event] lunch: expected true or false")
    event.lunch_offered = info.get("lunch", True)
    event.published_on = (
        _day(info["published"], "[event] published") if "published" in info else None
    )
    event.updated_on = _day(info["updated"], "[event] updated") if "updated" in info else None
    opens = info.get("registration_opens")
    event.registration_opens = (
        _moment(opens, zone, "[event] registration_opens") + shift if opens else None
    )
    closes = info.get("registration_closes")
    event.registration_closes = (
        _moment(closes, zone, "[event] registration_closes") + shift
        if closes
        else default_registration_closes(event)
    )
    if event.registration_opens and event.registration_opens >= event.registration_closes:
        raise EventFileError("[event]: registration_opens must come before registration_closes")
    session.add(event)
    session.flush()

    _load_programme(event, data.get("programme", []))
    promoted = _load_workshops(
        session, event, data.get("workshops", []), info.get("capacity"), actor
    )
    audit.record(
        session,
        actor,
        audit.AuditAction.EVENT_LOADED,
        f"{event.slug}: {event.title}, {event.date.isoformat()}, {len(event.workshops)} workshops",
        event=event,
    )
    return LoadedEvent(event, promoted)


def _load_programme(event: Event, items: list[dict]) -> None:
    event.programme.clear()
    for position, item in enumerate(items, start=1):
        where = f"[[programme]] #{position}"
        kind = _text(item, "kind", where) or "plenary"
        if kind not in PROGRAMME_KINDS:
            raise EventFileError(f"{where} kind: one of {', '.join(sorted(PROGRAMME_KINDS))}")
        event.programme.append(
            ProgrammeItem(
                position=position,
                starts=_clock(_required(item, "starts", where), f"{where} starts"),
                ends=_clock(item["ends"], f"{where} ends") if "ends" in item else None,
                title=_text(item, "title", where, 300, required=True),
                speakers=_text(item, "speakers", where, 500),
                kind=kind,
                heading=_text(item, "heading", where, 300),
                description=_text(item, "description", where),
            )
        )


def _load_workshops(
    session: Session,
    event: Event,
    items: list[dict],
    default_capacity: int | None,
    actor: audit.Actor,
) -> int:
    """Returns how many waiting participants got a seat that a larger capacity opened."""
    existing = {w.number: w for w in event.workshops}
    numbers = set()
    promoted = 0
    for index, item in enumerate(items, start=1):
        where = f"[[workshops]] #{index}"
        number = _required(item, "number", where)
        capacity = item.get("capacity", default_capacity)
        if not isinstance(number, int) or number < 1:
            raise EventFileError(f"{where}: number must be a positive whole number")
        if number in numbers:
            raise EventFileError(f"{where}: workshop {number} appears twice")
        if not isinstance(capacity, int) or not 0 <= capacity <= MAX_CAPACITY:
            raise EventFileError(
                f"{where}: capacity must be a whole number from 0 to {MAX_CAPACITY}"
            )
        numbers.add(number)
        workshop = existing.get(number) or Workshop(
            event=event, number=number, seats_taken=0, capacity=capacity
        )
        workshop.title = _text(item, "title", where, 300, required=True)
        workshop.description = _text(item, "description", where, required=True).strip()
        workshop.room = _text(item, "room", where, 200)
        session.add(workshop)
        session.flush()
        try:
            promoted += change_capacity(session, actor, workshop, capacity)
        except CapacityBelowSeatsError as error:
            raise EventFileError(
                f"workshop {number}: capacity {capacity} is below the "
                f"{error.seats_taken} seats already taken; nothing was changed"
            ) from error
    for number, workshop in existing.items():
        if number in numbers:
            continue
        registered = session.scalar(
            select(func.count()).where(Registration.workshop_id == workshop.id)
        )
        if registered:
            raise EventFileError(
                f"workshop {number} is missing from the file but has {registered} "
                "registrations; nothing was changed"
            )
        session.delete(workshop)
    return promoted
