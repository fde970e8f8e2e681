"""Delivers the outbox: claims due messages, sends them over one SMTP connection per batch,
and records each outcome. No registration ever waits on SMTP, and no message is dropped."""

from __future__ import annotations

import logging
import re
import smtplib
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from flask_mail import BadHeaderError, Connection, Message
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from . import audit
from .checkin import QR_CODE_CONTENT_ID, QR_CODE_SOURCE, checkin_qr_png, checkin_url
from .database import utcnow
from .models import (
    Event,
    Mailing,
    MailKind,
    OutboxMessage,
    OutboxState,
    Registration,
    RegistrationStatus,
)

log = logging.getLogger(__name__)

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

    def add(self, other: DeliveryReport) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.errors.extend(other.errors)

    @property
    def all_delivered(self) -> bool:
        return not (self.retried or self.failed)


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


class LeaseLostError(Exception):
    """Another worker took over this batch (our lease ran out): stop sending it."""


@dataclass
class Batch:
    """Messages leased to this pass; every change to them checks that we still hold them."""

    token: str
    lease_until: datetime
    pending: list[ClaimedMessage]
    sent_ids: list[int] = field(default_factory=list)

    def held(self, query):
        return query.where(
            OutboxMessage.lease_token == self.token, OutboxMessage.state == OutboxState.SENDING
        )


def _withdraw_messages_of_cancelled_registrations(session: Session, now: datetime) -> None:
    """A message back in the queue after its registration was cancelled (a retry, a stopped or
    crashed worker, a reminder queued at that very moment) would now say something false; only
    the cancellation notice itself still goes."""
    cancelled = select(Registration.id).where(Registration.status == RegistrationStatus.CANCELLED)
    session.execute(
        delete(OutboxMessage)
        .where(
            due_condition(now),
            OutboxMessage.kind != MailKind.CANCELLED,
            OutboxMessage.registration_id.in_(cancelled),
        )
        .execution_options(synchronize_session=False)
    )


def claim_due_messages(session: Session, now: datetime, limit: int) -> Batch:
    """Leases up to `limit` due messages to this worker. On PostgreSQL concurrent workers skip
    each other's rows (FOR UPDATE SKIP LOCKED); SQLite serialises the claim (BEGIN IMMEDIATE)."""
    batch = Batch(token=uuid.uuid4().hex, lease_until=now + _lease_length(), pending=[])
    _withdraw_messages_of_cancelled_registrations(session, now)
    due = (
        select(OutboxMessage.id)
        .where(due_condition(now))
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    # One statement leases the batch and returns it (not a SELECT, then an UPDATE per row).
    leased = session.scalars(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()))
        .values(state=OutboxState.SENDING, lease_until=batch.lease_until, lease_token=batch.token)
        .returning(OutboxMessage)
    )
    messages = sorted(leased, key=lambda message: (message.next_attempt_at, message.id))
    checkin_urls = checkin_urls_of(session, messages)
    for message in messages:
        batch.pending.append(
            ClaimedMessage(
                message.id,
                message.recipient,
                message.attempts,
                message.created_at,
                build_message(message),
            )
        )
    session.commit()
    # Drawn once the claim is committed: a QR code takes milliseconds, and on SQLite the claim
    # holds the write lock that registrations wait for.
    for claimed in batch.pending:
        if claimed.id in checkin_urls:
            attach_qr_code(claimed.mail, checkin_urls[claimed.id])
    return batch


def _lease_length() -> timedelta:
    return timedelta(seconds=current_app.config["MAIL_LEASE_SECONDS"])


def _keep_lease(session: Session, batch: Batch) -> None:
    """Renews the lease once half of it has gone, so that a slow relay does not let another
    worker take (and send again) a batch that is still being sent."""
    now = utcnow()
    if batch.lease_until - now > _lease_length() / 2:
        return
    until = now + _lease_length()
    renewed = session.execute(
        batch.held(update(OutboxMessage))
        .values(lease_until=until)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if renewed.rowcount != len(batch.pending) + len(batch.sent_ids):
        raise LeaseLostError
    batch.lease_until = until


CALENDAR_METHOD = re.compile(r"^METHOD:(\S+)", re.MULTILINE)


def checkin_urls_of(session: Session, messages: list[OutboxMessage]) -> dict[int, str]:
    """The check-in link of each message whose HTML shows the QR code, by message id, from its
    registration's code (one query). The PNG is made at send time rather than stored with the
    message: it needs no column, costs the background worker a few milliseconds, not the
    participant's registration request, and a message queued before QR codes never gets one."""
    showing = [
        m for m in messages if m.registration_id is not None and QR_CODE_SOURCE in m.body_html
    ]
    if not showing:
        return {}
    codes = dict(
        session.execute(
            select(Registration.id, Registration.checkin_code).where(
                Registration.id.in_({m.registration_id for m in showing})
            )
        ).all()
    )
    return {
        m.id: checkin_url(codes[m.registration_id]) for m in showing if m.registration_id in codes
    }


def build_message(message: OutboxMessage, qr_code_url: str | None = None) -> Message:
    """The e-mail as sent, with the QR code of `qr_code_url` if given."""
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
    if qr_code_url:
        attach_qr_code(mail, qr_code_url)
    if message.calendar:
        # The content type repeats the calendar's METHOD (RFC 6047), or clients ignore it.
        method = CALENDAR_METHOD.search(message.calendar).group(1)
        mail.attach(
            "invitation.ics",
            f"text/calendar; charset=utf-8; method={method}",
            message.calendar.encode(),
        )
    return mail


def attach_qr_code(mail: Message, url: str) -> None:
    """The QR code of `url` as an inline PNG that the HTML part shows by its Content-ID."""
    mail.attach(
        "code-accueil.png",
        "image/png",
        checkin_qr_png(url),
        disposition="inline",
        headers={"Content-ID": f"<{QR_CODE_CONTENT_ID}>"},
    )


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
    request is honoured between two messages; what was not tried goes back to the queue.
    No database transaction stays open while we talk to the SMTP server."""
    now = now or utcnow()
    report = DeliveryReport()
    batch = claim_due_messages(session, now, current_app.config["MAIL_BATCH_SIZE"])
    if not batch.pending:
        return report
    connection = TimedConnection(current_app.extensions["mail"])
    try:
        connection.host = connection.configure_host()
        while batch.pending and not (stop and stop.is_set()):
            _keep_lease(session, batch)
            message = batch.pending.pop(0)
            try:
                connection.send(message.mail)
            except MESSAGE_REFUSED as error:
                _record_refusal(session, batch, message, error, now, report)
                continue
            except (OSError, smtplib.SMTPException):
                batch.pending.insert(0, message)
                raise
            except Exception as error:
                # This message cannot be sent as it is (e.g. an address smtplib cannot encode):
                # fail it, with the reason, rather than let it block the queue.
                _record_unsendable(session, batch, message, error, report)
                connection.host.rset()  # the server may be mid-transaction; failing here retries
                continue
            batch.sent_ids.append(message.id)
            if len(batch.sent_ids) >= RECORD_SENT_EVERY and not _record_sent(
                session, batch, report
            ):
                raise LeaseLostError
    except (OSError, smtplib.SMTPException) as error:
        # Refused, timed out, or dropped (the message in hand may have gone through: it is
        # retried with the same Message-ID), or the sender was refused: retry them all later.
        while batch.pending:
            _schedule_retry(session, batch, batch.pending.pop(0), error, now, report)
    except LeaseLostError:
        report.errors.append("lease lost: another worker took over this batch")
    finally:
        _close(connection)
        _settle(session, batch, report)
    return report


def _settle(session: Session, batch: Batch, report: DeliveryReport) -> None:
    """Records what went out and gives back what was not tried, even after a database error
    in the middle of the batch (then with a fresh transaction; if the database is still away,
    the lease runs out and the messages are retried with the same Message-ID)."""
    session.rollback()
    try:
        _record_sent(session, batch, report)
        _release(session, batch)
    except SQLAlchemyError:
        session.rollback()
        log.exception("could not record the end of a mail batch; its lease will expire")


MESSAGE_REFUSED = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPDataError,
    smtplib.SMTPNotSupportedError,
    BadHeaderError,
)


def _update(session: Session, batch: Batch, message_id: int, **values) -> None:
    session.execute(
        batch.held(update(OutboxMessage))
        .where(OutboxMessage.id == message_id)
        .values(lease_until=None, lease_token=None, **values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _record_sent(session: Session, batch: Batch, report: DeliveryReport) -> bool:
    """Marks what went out as sent; False if another worker took some of them over."""
    if not batch.sent_ids:
        return True
    recorded = session.execute(
        batch.held(update(OutboxMessage))
        .where(OutboxMessage.id.in_(batch.sent_ids))
        .values(
            state=OutboxState.SENT,
            sent_at=utcnow(),
            lease_until=None,
            lease_token=None,
            last_error=None,
            attempts=OutboxMessage.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    report.sent += recorded.rowcount
    held = recorded.rowcount == len(batch.sent_ids)
    batch.sent_ids.clear()
    return held


def _fail(session, batch, message: ClaimedMessage, reply: str, report) -> None:
    _update(
        session,
        batch,
        message.id,
        state=OutboxState.FAILED,
        attempts=message.attempts + 1,
        last_error=reply,
    )
    report.failed += 1
    report.errors.append(f"{message.recipient}: {reply}")


def _record_refusal(session, batch, message: ClaimedMessage, error, now, report) -> None:
    code, reply = _reply_of(error)
    if code is not None and code >= 500:
        _fail(session, batch, message, reply, report)
    else:
        _schedule_retry(session, batch, message, error, now, report)


def _record_unsendable(session, batch, message: ClaimedMessage, error, report) -> None:
    log.exception("message %s cannot be sent", message.id)
    _fail(session, batch, message, f"not sendable: {type(error).__name__}: {error}", report)


def _schedule_retry(session, batch, message: ClaimedMessage, error, now, report) -> None:
    _code, reply = _reply_of(error)
    attempts = message.attempts + 1
    give_up_after = timedelta(seconds=current_app.config["MAIL_GIVE_UP_AFTER_SECONDS"])
    if now - message.created_at >= give_up_after:
        _fail(session, batch, message, f"{reply} (gave up)", report)
        return
    _update(
        session,
        batch,
        message.id,
        state=OutboxState.QUEUED,
        attempts=attempts,
        last_error=reply,
        next_attempt_at=utcnow() + retry_delay(attempts),
    )
    report.retried += 1


def _release(session: Session, batch: Batch) -> None:
    """Gives back what a stopping worker did not try, for the next pass."""
    if not batch.pending:
        return
    session.execute(
        batch.held(update(OutboxMessage))
        .where(OutboxMessage.id.in_([message.id for message in batch.pending]))
        .values(state=OutboxState.QUEUED, lease_until=None, lease_token=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    batch.pending.clear()


def _close(connection: TimedConnection) -> None:
    if connection.host is None:
        return
    try:
        connection.host.quit()
    except (OSError, smtplib.SMTPException):
        connection.host.close()


def of_event(event: Event):
    """The messages of an event: to its registrations, or of its mailings."""
    return or_(
        OutboxMessage.registration_id.in_(
            select(Registration.id).where(Registration.event_id == event.id)
        ),
        OutboxMessage.mailing_id.in_(select(Mailing.id).where(Mailing.event_id == event.id)),
    )


def outbox_counts(session: Session, event: Event | None = None) -> dict[str, int]:
    """Messages per state, of one event or of all."""
    query = select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
    if event is not None:
        query = query.where(of_event(event))
    rows = session.execute(query).all()
    counts = {state.value: 0 for state in OutboxState}
    counts.update({state.value: number for state, number in rows})
    return counts


def recent_failures(
    session: Session, event: Event | None = None, limit: int = 20
) -> list[OutboxMessage]:
    """The last messages that failed or wait for a retry, of one event or of all."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.last_error.is_not(None), OutboxMessage.state != OutboxState.SENT)
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    if event is not None:
        query = query.where(of_event(event))
    return list(session.scalars(query))


class NotFailedError(Exception):
    """Raised when a message to retry is not (or no longer) failed: queued, being sent or sent."""


def retry_failed_message(
    session: Session, actor: audit.Actor, message: OutboxMessage, now: datetime | None = None
) -> None:
    """Puts a failed message back in the queue, due now. Its attempts and its last error stay,
    as a record of what happened. The caller commits."""
    now = now or utcnow()
    # Conditional, so that two clicks (or a click racing another retry) queue it once.
    requeued = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id, OutboxMessage.state == OutboxState.FAILED)
        .values(state=OutboxState.QUEUED, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    if requeued.rowcount != 1:
        raise NotFailedError
    session.refresh(message)
    registration = (
        session.get(Registration, message.registration_id) if message.registration_id else None
    )
    audit.record(
        session,
        actor,
        audit.AuditAction.MAIL_RETRIED,
        f"{message.kind} to {message.recipient}, after {message.attempts} attempts",
        registration=registration,
        before={"state": OutboxState.FAILED, "last_error": message.last_error},
        after={"state": OutboxState.QUEUED},
        at=now,
    )
    session.flush()
