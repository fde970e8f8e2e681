"""Delivers the outbox: claims due messages, sends them over one SMTP connection per batch,
and records each outcome. No registration ever waits on SMTP, and no message is dropped."""

from __future__ import annotations

import smtplib
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from flask_mail import BadHeaderError, Connection, Message
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from .database import utcnow
from .models import OutboxMessage, OutboxState

# How many sent messages are recorded at once. A crash between two records resends at most
# these, with the same Message-ID.
RECORD_SENT_EVERY = 25


class TimedConnection(Connection):
    """Flask-Mail's connection with a socket timeout, so that a hung server cannot hang us."""

    def configure_host(self):
        config = current_app.config
        timeout = config["MAIL_TIMEOUT_SECONDS"]
        smtp_class = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = smtp_class(self.mail.server, self.mail.port, timeout=timeout)
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def due_condition(now: datetime):
    return or_(
        (OutboxMessage.state == OutboxState.QUEUED) & (OutboxMessage.next_attempt_at <= now),
        # A worker that died mid-batch left these; its lease is over.
        (OutboxMessage.state == OutboxState.SENDING) & (OutboxMessage.lease_until < now),
    )


@dataclass(frozen=True)
class ClaimedMessage:
    id: int
    recipient: str
    attempts: int
    created_at: datetime
    mail: Message


def claim_due_messages(session: Session, now: datetime, limit: int) -> list[ClaimedMessage]:
    """Leases up to `limit` due messages to this worker. On PostgreSQL concurrent workers skip
    each other's rows (FOR UPDATE SKIP LOCKED); SQLite serialises the claim (BEGIN IMMEDIATE)."""
    lease_until = now + timedelta(seconds=current_app.config["MAIL_LEASE_SECONDS"])
    query = (
        select(OutboxMessage)
        .where(due_condition(now))
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = []
    for message in session.scalars(query):
        message.state = OutboxState.SENDING
        message.lease_until = lease_until
        claimed.append(
            ClaimedMessage(
                message.id,
                message.recipient,
                message.attempts,
                message.created_at,
                build_message(message),
            )
        )
    session.commit()
    return claimed


def build_message(message: OutboxMessage) -> Message:
    mail = Message(
        subject=message.subject,
        recipients=[message.recipient],
        body=message.body_text,
        html=message.body_html,
        reply_to=message.reply_to,
        sender=current_app.config["MAIL_DEFAULT_SENDER"],
    )
    # Kept across retries, so that a resent message is recognisably the same one.
    mail.msgId = message.message_id
    if message.calendar:
        mail.attach(
            "invitation.ics",
            "text/calendar; charset=utf-8; method=PUBLISH",
            message.calendar.encode(),
        )
    return mail


def retry_delay(attempts: int) -> timedelta:
    config = current_app.config
    seconds = config["MAIL_RETRY_BASE_SECONDS"] * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, config["MAIL_RETRY_MAX_SECONDS"]))


def _reply_of(error: BaseException) -> tuple[int | None, str]:
    if isinstance(error, BadHeaderError):
        return 554, "554 the message has a header with a line break (not sent)"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(error.recipients.values()))
        return code, f"{code} {reply.decode(errors='replace')}"
    if isinstance(error, smtplib.SMTPResponseException):
        reply = error.smtp_error
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return error.smtp_code, f"{error.smtp_code} {text}"
    return None, f"{type(error).__name__}: {error}"


def send_due_messages(
    session: Session, now: datetime | None = None, stop: threading.Event | None = None
) -> DeliveryReport:
    """One pass: claims a batch of due messages and sends them on one connection. A stop
    request is honoured between two messages; what was not tried goes back to the queue."""
    now = now or utcnow()
    report = DeliveryReport()
    pending = claim_due_messages(session, now, current_app.config["MAIL_BATCH_SIZE"])
    if not pending:
        return report
    sent_ids: list[int] = []
    connection = TimedConnection(current_app.extensions["mail"])
    try:
        connection.host = connection.configure_host()
        while pending and not (stop and stop.is_set()):
            message = pending[0]
            try:
                connection.send(message.mail)
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, BadHeaderError) as error:
                pending.pop(0)
                _record_refusal(session, message, error, now, report)
                continue
            pending.pop(0)
            sent_ids.append(message.id)
            if len(sent_ids) >= RECORD_SENT_EVERY:
                _record_sent(session, sent_ids, report)
    except (OSError, smtplib.SMTPException) as error:
        # Refused, timed out, or dropped (the message in hand may have gone through: it is
        # retried with the same Message-ID), or the sender was refused: retry them all later.
        for message in pending:
            _schedule_retry(session, message, error, now, report)
        pending = []
    finally:
        _record_sent(session, sent_ids, report)
        _release(session, pending)
        _close(connection)
        session.commit()
    return report


def _update(session: Session, message_id: int, **values) -> None:
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _record_sent(session: Session, sent_ids: list[int], report: DeliveryReport) -> None:
    if not sent_ids:
        return
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(sent_ids))
        .values(
            state=OutboxState.SENT,
            sent_at=utcnow(),
            lease_until=None,
            last_error=None,
            attempts=OutboxMessage.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    report.sent += len(sent_ids)
    sent_ids.clear()


def _record_refusal(session, message: ClaimedMessage, error, now, report) -> None:
    code, reply = _reply_of(error)
    if code is not None and code >= 500:
        _update(
            session,
            message.id,
            state=OutboxState.FAILED,
            attempts=message.attempts + 1,
            last_error=reply,
            lease_until=None,
        )
        report.failed += 1
        report.errors.append(f"{message.recipient}: {reply}")
    else:
        _schedule_retry(session, message, error, now, report)


def _schedule_retry(session, message: ClaimedMessage, error, now, report) -> None:
    _code, reply = _reply_of(error)
    attempts = message.attempts + 1
    give_up_after = timedelta(seconds=current_app.config["MAIL_GIVE_UP_AFTER_SECONDS"])
    if now - message.created_at >= give_up_after:
        _update(
            session,
            message.id,
            state=OutboxState.FAILED,
            attempts=attempts,
            last_error=f"{reply} (gave up)",
            lease_until=None,
        )
        report.failed += 1
        report.errors.append(f"{message.recipient}: {reply} (gave up)")
        return
    _update(
        session,
        message.id,
        state=OutboxState.QUEUED,
        attempts=attempts,
        last_error=reply,
        lease_until=None,
        next_attempt_at=now + retry_delay(attempts),
    )
    report.retried += 1


def _release(session: Session, messages: list[ClaimedMessage]) -> None:
    for message in messages:
        _update(session, message.id, state=OutboxState.QUEUED, lease_until=None)


def _close(connection: TimedConnection) -> None:
    if connection.host is None:
        return
    try:
        connection.host.quit()
    except (OSError, smtplib.SMTPException):
        connection.host.close()


def outbox_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
    ).all()
    counts = {state.value: 0 for state in OutboxState}
    counts.update({state.value: number for state, number in rows})
    return counts


def recent_failures(session: Session, limit: int = 20) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.last_error.is_not(None),
                OutboxMessage.state != OutboxState.SENT,
            )
            .order_by(OutboxMessage.id.desc())
            .limit(limit)
        )
    )
