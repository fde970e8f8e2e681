"""The mail outbox: every e-mail is a row written in the transaction that causes it."""

from __future__ import annotations

from email.utils import make_msgid

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .database import utcnow
from .links import public_host
from .messages import render_registration_message
from .models import Mailing, MailKind, OutboxMessage, OutboxState, Registration

DIALECT_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def queue_registration_message(
    session: Session,
    kind: MailKind,
    registration: Registration,
    dedupe_key: str | None = None,
    waitlist_position: int | None = None,
    withdraw_calendar: bool = False,
    note: str | None = None,
    mailing: Mailing | None = None,
    workshop_changed: bool = False,
) -> bool:
    """Queues the message in the session's transaction (the caller commits). A message whose
    dedupe key is already queued is not queued again, even by a concurrent caller.
    `note` and `mailing`: an organiser's mailing this message belongs to, and its note;
    `workshop_changed`: the organisers moved the participant, and the mail says so first.
    Returns whether a message was added."""
    if dedupe_key and session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)
    ):
        return False
    rendered = render_registration_message(
        kind,
        registration,
        waitlist_position,
        withdraw_calendar,
        note=note,
        workshop_changed=workshop_changed,
    )
    now = utcnow()
    # Into the table, not through the ORM: nothing here needs an object, and it costs less.
    table = OutboxMessage.__table__
    insert = DIALECT_INSERTS[session.get_bind().dialect.name](table).values(
        kind=kind,
        mailing_id=mailing.id if mailing else None,
        registration_id=registration.id,
        dedupe_key=dedupe_key,
        recipient=registration.email,
        reply_to=registration.event.contact_email,
        language=registration.language,
        subject=rendered.subject,
        body_text=rendered.body_text,
        body_html=rendered.body_html,
        calendar=rendered.calendar,
        message_id=make_msgid(domain=public_host()),
        state=OutboxState.QUEUED,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    inserted = session.execute(
        insert.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(table.c.id)
    )
    return inserted.first() is not None
