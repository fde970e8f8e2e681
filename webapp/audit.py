"""The audit log: who changed what, when, with the values before and after.

Domain functions that change something take the actor and write the entry in the same
transaction as the change, so that the log can never miss one nor record one that was undone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from .database import utcnow
from .models import AuditEntry, Event, Registration, User


@dataclass(frozen=True)
class Actor:
    """Who acts: a dashboard user, the participant on their own page, or the system."""

    label: str
    user_id: int | None = None

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(f"{user.role}:{user.email}", user.id)


PARTICIPANT = Actor("participant")
SYSTEM = Actor("system")


def record(
    session: Session,
    actor: Actor,
    action: str,
    summary: str,
    *,
    event: Event | None = None,
    registration: Registration | None = None,
    before: dict | None = None,
    after: dict | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Adds an entry to the session; the caller's commit saves it with the change."""
    if registration is not None and event is None:
        event = registration.event
    entry = AuditEntry(
        at=at or utcnow(),
        actor=actor.label,
        user_id=actor.user_id,
        action=action,
        event_id=event.id if event else None,
        registration_id=registration.id if registration else None,
        summary=summary[:500],
        before=before,
        after=after,
    )
    session.add(entry)
    return entry


def entries_query(
    event: Event | None = None,
    *,
    action: str | None = None,
    actor: str | None = None,
    registration_id: int | None = None,
) -> Select:
    """The log, newest first, filtered by event, action, actor (a part of it) or registration."""
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if event is not None:
        query = query.where(AuditEntry.event_id == event.id)
    if action:
        query = query.where(AuditEntry.action == action)
    if actor:
        query = query.where(AuditEntry.actor.contains(actor, autoescape=True))
    if registration_id is not None:
        query = query.where(AuditEntry.registration_id == registration_id)
    return query
