"""Keeps the promise of the privacy page: registrations go some time after their event."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .database import utcnow
from .models import Event, OutboxMessage, Registration


def purge_expired_registrations(
    session: Session, retention_days: int, now: datetime | None = None
) -> int:
    """Deletes the registrations, and the e-mails that name them, of every event that ended
    more than `retention_days` days ago. Returns how many registrations went."""
    now = now or utcnow()
    removed = 0
    for event in session.scalars(select(Event)):
        if now < event.ends_at + timedelta(days=retention_days):
            continue
        registrations = select(Registration.id).where(Registration.event_id == event.id)
        session.execute(
            delete(OutboxMessage).where(OutboxMessage.registration_id.in_(registrations))
        )
        removed += session.execute(
            delete(Registration).where(Registration.event_id == event.id)
        ).rowcount
        # The seats stay counted as taken: the event is over.
    session.commit()
    return removed
