"""Finding the event that the site shows."""

from flask import abort, current_app
from sqlalchemy import select

from .extensions import db
from .models import Event


def find_current_event() -> Event | None:
    """The event named by EVENT_SLUG, else the one with the latest date."""
    slug = current_app.config.get("EVENT_SLUG")
    query = select(Event)
    query = query.where(Event.slug == slug) if slug else query.order_by(Event.date.desc())
    return db.session.scalars(query.limit(1)).first()


def current_event() -> Event:
    event = find_current_event()
    if event is None:
        abort(404)
    return event
