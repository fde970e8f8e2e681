"""The audit log: who changed what, when, with the values before and after.

Domain functions that change something take the actor and write the entry in the same
transaction as the change, so that the log can never miss one nor record one that was undone.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from .database import utcnow
from .models import AuditEntry, Event, Registration, User
from .roster import SearchPage


@dataclass(frozen=True)
class Actor:
    """Who acts: a dashboard user, the participant on their own page, or the system."""

    label: str
    user_id: int | None = None

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(f"{user.role}:{user.email}", user.id)


class AuditAction(enum.StrEnum):
    """What an audit entry records; the journal names each one."""

    REGISTRATION_CREATED = "registration.created"
    REGISTRATION_CANCELLED = "registration.cancelled"
    REGISTRATION_PROMOTED = "registration.promoted"
    REGISTRATION_MOVED = "registration.moved"
    REGISTRATION_UPDATED = "registration.updated"
    REGISTRATION_MAIL_RESENT = "registration.mail_resent"
    REGISTRATION_CHECKED_IN = "registration.checked_in"
    REGISTRATION_CHECK_IN_UNDONE = "registration.check_in_undone"
    WORKSHOP_CAPACITY_CHANGED = "workshop.capacity_changed"
    EVENT_LOADED = "event.loaded"
    EVENT_REGISTRATION_CLOSED = "event.registration_closed"
    EVENT_REGISTRATION_REOPENED = "event.registration_reopened"
    EVENT_PURGED = "event.purged"
    MAILING_SENT = "mailing.sent"
    MAIL_RETRIED = "mail.retried"
    USER_CREATED = "user.created"
    USER_ENABLED = "user.enabled"
    USER_DISABLED = "user.disabled"
    USER_LOGIN = "user.login"
    USER_PASSWORD_CHANGED = "user.password_changed"


PARTICIPANT = Actor("participant")
SYSTEM = Actor("system")


def record(
    session: Session,
    actor: Actor,
    action: AuditAction,
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
    with_account_changes: bool = False,
) -> Select:
    """The log, newest first, filtered by event, action, actor (a part of it) or registration;
    `with_account_changes` adds the entries of no event (accounts, logins) to the event's."""
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if event is not None and with_account_changes:
        query = query.where(or_(AuditEntry.event_id == event.id, AuditEntry.event_id.is_(None)))
    elif event is not None:
        query = query.where(AuditEntry.event_id == event.id)
    if action:
        query = query.where(AuditEntry.action == action)
    if actor:
        query = query.where(AuditEntry.actor.contains(actor, autoescape=True))
    if registration_id is not None:
        query = query.where(AuditEntry.registration_id == registration_id)
    return query


def entries_page(session: Session, query: Select, page: int, per_page: int) -> SearchPage:
    """One page of a log query; a page past the end gives the last one."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    page = min(max(page, 1), max(math.ceil(total / per_page), 1))
    rows = session.scalars(query.limit(per_page).offset((page - 1) * per_page))
    return SearchPage(list(rows), total, page, per_page)


def actions_in_log(session: Session, event: Event | None) -> list[str]:
    """The actions that the event's log (with the account changes) holds, for a filter."""
    query = entries_query(event, with_account_changes=True).order_by(None)
    actions = query.with_only_columns(AuditEntry.action).distinct().order_by(AuditEntry.action)
    return list(session.scalars(actions))


@dataclass(frozen=True)
class Change:
    field: str
    before: object
    after: object


def changes(entry: AuditEntry) -> list[Change]:
    """The entry's before and after, field by field, in the order they were written."""
    before, after = entry.before or {}, entry.after or {}
    fields = list(before) + [name for name in after if name not in before]
    return [Change(name, before.get(name), after.get(name)) for name in fields]
