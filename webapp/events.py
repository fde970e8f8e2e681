"""Finding the event that the site shows, and the events loaded."""

from dataclasses import dataclass

from flask import abort, current_app
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from .extensions import db
from .models import Event, Registration, RegistrationStatus, Workshop


def current_event_query(slug: str | None) -> Select:
    """The event named by EVENT_SLUG, else the one with the latest date."""
    query = select(Event)
    query = query.where(Event.slug == slug) if slug else query.order_by(Event.date.desc())
    return query.limit(1)


def find_current_event() -> Event | None:
    return db.session.scalars(current_event_query(current_app.config.get("EVENT_SLUG"))).first()


def current_event() -> Event:
    event = find_current_event()
    if event is None:
        abort(404)
    return event


@dataclass(frozen=True)
class EventSummary:
    event: Event
    workshops: int
    registrations: int  # not cancelled: seated or waiting


def event_summaries(session: Session) -> list[EventSummary]:
    """Every loaded event, the latest date first, with its workshops and live registrations."""
    workshops = (
        select(func.count(Workshop.id)).where(Workshop.event_id == Event.id).scalar_subquery()
    )
    registrations = (
        select(func.count(Registration.id))
        .where(
            Registration.event_id == Event.id,
            Registration.status != RegistrationStatus.CANCELLED,
        )
        .scalar_subquery()
    )
    rows = session.execute(
        select(Event, workshops, registrations).order_by(Event.date.desc(), Event.slug)
    )
    return [EventSummary(*row) for row in rows]
