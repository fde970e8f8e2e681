"""The mail outbox: every e-mail is a row written in the transaction that causes it."""

from __future__ import annotations

from email.utils import make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from .links import public_host
from .messages import render_registration_message
from .models import OutboxMessage, Registration


def queue_registration_message(
    session: Session,
    kind: str,
    registration: Registration,
    dedupe_key: str | None = None,
    waitlist_position: int | None = None,
) -> OutboxMessage | None:
    """Adds the message to the session (the caller commits). With a dedupe key already queued,
    queues nothing: the unique index backs this check against concurrent callers."""
    if dedupe_key and session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)
    ):
        return None
    rendered = render_registration_message(kind, registration, waitlist_position)
    message = OutboxMessage(
        kind=kind,
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
    )
    session.add(message)
    return message
