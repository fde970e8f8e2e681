"""Reminders: the automatic one before the event, and mailings an organiser sends now."""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, mailings, outbox
from .database import utcnow
from .models import (
    Event,
    MailingAudience,
    MailKind,
    OutboxMessage,
    Registration,
    RegistrationStatus,
)

# The automatic reminder's messages: this and the registration's id.
AUTOMATIC_REMINDER_KEY = "reminder:"


def reminder_moment(event: Event) -> datetime:
    """When the automatic reminder goes: REMINDER_DAYS_BEFORE days before, at REMINDER_TIME,
    in the event's time zone."""
    config = current_app.config
    day = event.date - timedelta(days=config["REMINDER_DAYS_BEFORE"])
    return event.local(day, time.fromisoformat(config["REMINDER_TIME"]))


def _confirmed(event: Event):
    return (
        select(Registration)
        .where(
            Registration.event_id == event.id,
            Registration.status == RegistrationStatus.CONFIRMED,
        )
        .order_by(Registration.id)
    )


def queue_due_reminders(session: Session, now: datetime | None = None) -> int:
    """Queues the automatic reminder for every event whose reminder time has come and which has
    not started: for every confirmed registration made before that time, once. Running late
    (the job was down) still sends them; running twice, or in two workers, queues nothing more.
    The caller commits."""
    now = now or utcnow()
    queued = 0
    for event in session.scalars(select(Event)):
        moment = reminder_moment(event)
        if not (moment <= now < event.starts_at):
            continue
        registrations = session.scalars(_confirmed(event).where(Registration.created_at < moment))
        for registration in registrations:
            queued += outbox.queue_registration_message(
                session,
                MailKind.REMINDER,
                registration,
                dedupe_key=f"{AUTOMATIC_REMINDER_KEY}{registration.id}",
            )
    session.flush()
    return queued


def send_reminder_mailing(
    session: Session,
    event: Event,
    workshop_number: int | None = None,
    mailing_key: str | None = None,
    now: datetime | None = None,
    actor: audit.Actor = audit.SYSTEM,
) -> int:
    """An organiser's reminder from the command line, to all confirmed participants or one
    workshop's: a mailing like the dashboard's, listed with them. One mailing is identified by
    its key (by default the scope and today's date in the event's time zone): sending it again
    queues nothing. Returns how many messages were queued; the caller commits."""
    now = now or utcnow()
    scope = f"workshop-{workshop_number}" if workshop_number is not None else "all"
    mailing_key = mailing_key or f"{scope}:{now.astimezone(event.zone).date().isoformat()}"
    workshop = next((w for w in event.workshops if w.number == workshop_number), None)
    if workshop_number is not None and workshop is None:
        raise ValueError(f"{event.slug} has no workshop {workshop_number}")
    # Any length of name fits the column, and no dashboard key (no colon) can equal it.
    key = "cli:" + hashlib.sha256(f"{event.id}:{mailing_key}".encode()).hexdigest()
    audience = MailingAudience.CONFIRMED if workshop is None else MailingAudience.WORKSHOP
    try:
        result = mailings.send_mailing(session, actor, event, audience, workshop, None, key)
    except mailings.NoRecipientsError:
        return 0
    return result.queued


def automatic_reminder_progress(session: Session, event: Event) -> mailings.Progress:
    """How far the automatic reminder of the event has got (nothing before it is queued)."""
    return mailings.progress_where(
        session,
        OutboxMessage.dedupe_key.startswith(AUTOMATIC_REMINDER_KEY, autoescape=True)
        & OutboxMessage.registration_id.in_(
            select(Registration.id).where(Registration.event_id == event.id)
        ),
    )
