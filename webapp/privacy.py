"""Keeps the promise of the privacy page: registrations go some time after their event."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from . import audit
from .database import utcnow
from .models import AuditEntry, Event, OutboxMessage, Registration


def purge_expired_registrations(
    session: Session,
    retention_days: int,
    actor: audit.Actor = audit.SYSTEM,
    now: datetime | None = None,
) -> dict[str, int]:
    """Deletes the registrations, and the e-mails and audit entries that name them, of every
    event that ended more than `retention_days` days ago. Returns how many registrations went,
    by event slug (every event past its retention, even with none left)."""
    now = now or utcnow()
    removed = {}
    for event in session.scalars(select(Event).order_by(Event.date)):
        if now < event.ends_at + timedelta(days=retention_days):
            continue
        # Only registrations made before the event ended: if a reload moved an event back in
        # time by mistake, its newer registrations are not touched.
        expired = (Registration.event_id == event.id) & (Registration.created_at < event.ends_at)
        expired_ids = select(Registration.id).where(expired)
        session.execute(delete(OutboxMessage).where(OutboxMessage.registration_id.in_(expired_ids)))
        session.execute(delete(AuditEntry).where(AuditEntry.registration_id.in_(expired_ids)))
        removed[event.slug] = session.execute(delete(Registration).where(expired)).rowcount
        # The seats stay counted as taken: the event is over.
        if removed[event.slug]:
            audit.record(
                session,
                actor,
                audit.AuditAction.EVENT_PURGED,
                f"{event.slug}: {removed[event.slug]} registrations deleted",
                event=event,
            )
    session.flush()
    return removed
