"""Reminders: the automatic one before the event, and mailings an organiser sends now."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import outbox
from .database import utcnow
from .models import Event, MailKind, Registration, RegistrationStatus, Workshop


def reminder_moment(event: Event) -> datetime:
    """When the automatic reminder goes: REMINDER_DAYS_BEFORE days before, at REMINDER_TIME,
    in the event's time zone."""
    config = current_app.config
    day = event.date - timedelta(days=config["REMINDER_DAYS_BEFORE"])
    return event.local(day, time.fromisoformat(config["REMINDER_TIME"]))


def _confirmed(event: Event, workshop_number: int | None = None):
    query = (
        select(Registration)
        .where(
            Registration.event_id == event.id,
            Registration.status == RegistrationStatus.CONFIRMED,
        )
        .order_by(Registration.id)
    )
    if workshop_number is not None:
        query = query.join(Workshop).where(Workshop.number == workshop_number)
    return query


def queue_due_reminders(session: Session, now: datetime | None = None) -> int:
    """Queues the automatic reminder for every event whose reminder time has come and which has
    not started: for every confirmed registration made before that time, once. Running late
    (the job was down) still sends them; running twice, or in two workers, queues nothing more."""
    now = now or utcnow()
    queued = 0
    for event in session.scalars(select(Event)):
        moment = reminder_moment(event)
        if not (moment <= now < event.starts_at):
            continue
        registrations = session.scalars(_confirmed(event).where(Registration.created_at < moment))
        for registration in registrations:
            queued += outbox.queue_registration_message(
                session, MailKind.REMINDER, registration, dedupe_key=f"reminder:{registration.id}"
            )
        session.commit()
    return queued


def send_reminder_mailing(
    session: Session,
    event: Event,
    workshop_number: int | None = None,
    mailing_key: str | None = None,
    now: datetime | None = None,
) -> int:
    """An organiser's reminder, to all confirmed participants or one workshop's. One mailing is
    identified by its key (by default the scope and today's date in the event's time zone):
    sending it again reaches nobody twice. The caller commits."""
    now = now or utcnow()
    scope = f"workshop-{workshop_number}" if workshop_number is not None else "all"
    mailing_key = mailing_key or f"{scope}:{now.astimezone(event.zone).date().isoformat()}"
    queued = 0
    for registration in session.scalars(_confirmed(event, workshop_number)):
        queued += outbox.queue_registration_message(
            session,
            MailKind.REMINDER,
            registration,
            dedupe_key=f"mailing:{event.id}:{mailing_key}:{registration.id}",
        )
    session.flush()
    return queued
