"""Organisers' mailings: who an audience reaches, the message they read, queueing a mailing once,
and how far its delivery has got."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, joinedload

from . import audit, outbox
from .messages import RenderedMessage, render_registration_message
from .models import (
    Event,
    Mailing,
    MailingAudience,
    MailKind,
    OutboxMessage,
    OutboxState,
    Registration,
    RegistrationStatus,
    Workshop,
)
from .roster import event_roster

NOTE_MAX_LENGTH = 2000


class NoRecipientsError(Exception):
    """Nobody is in the chosen audience: there is nothing to send."""


@dataclass(frozen=True)
class Recipient:
    registration: Registration
    waitlist_position: int | None = None


def recipients(
    session: Session, event: Event, audience: MailingAudience, workshop: Workshop | None = None
) -> list[Recipient]:
    """The registrations an audience reaches: the confirmed participants (of one workshop), or
    everyone waiting, with their place on their workshop's waiting list."""
    if audience is MailingAudience.WORKSHOP:
        if workshop is None or workshop.event_id != event.id:
            raise ValueError("a workshop mailing needs a workshop of its event")
        roster = event_roster(session, event, workshop.number)
    else:
        roster = event_roster(session, event)
    if audience is MailingAudience.WAITING:
        return [
            Recipient(registration, position)
            for workshop_roster in roster.workshops
            for position, registration in enumerate(workshop_roster.waiting, start=1)
        ]
    return [Recipient(registration) for registration in roster.seated]


@dataclass(frozen=True)
class AudienceSizes:
    """How many people each audience would reach, for the form's choices."""

    confirmed: int
    waiting: int
    confirmed_per_workshop: dict[int, int]


def audience_sizes(session: Session, event: Event) -> AudienceSizes:
    rows = session.execute(
        select(Registration.workshop_id, Registration.status, func.count())
        .where(
            Registration.event_id == event.id,
            Registration.status != RegistrationStatus.CANCELLED,
        )
        .group_by(Registration.workshop_id, Registration.status)
    ).all()
    per_workshop = {
        workshop_id: number
        for workshop_id, status, number in rows
        if status is RegistrationStatus.CONFIRMED
    }
    waiting = sum(number for _, status, number in rows if status is RegistrationStatus.WAITLISTED)
    return AudienceSizes(sum(per_workshop.values()), waiting, per_workshop)


@dataclass(frozen=True)
class MailingPreview:
    recipient_count: int
    # The message exactly as it will go to this first recipient.
    recipient: Registration
    message: RenderedMessage


def preview(
    session: Session,
    event: Event,
    audience: MailingAudience,
    workshop: Workshop | None,
    note: str | None,
) -> MailingPreview:
    """The mailing as its first recipient will receive it. Raises NoRecipientsError."""
    people = recipients(session, event, audience, workshop)
    if not people:
        raise NoRecipientsError
    first = people[0]
    message = render_registration_message(
        MailKind.REMINDER, first.registration, first.waitlist_position, note=note
    )
    return MailingPreview(len(people), first.registration, message)


@dataclass(frozen=True)
class MailingResult:
    mailing: Mailing
    queued: int
    # False when the key named a mailing that already existed: nothing more was queued.
    created: bool


def send_mailing(
    session: Session,
    actor: audit.Actor,
    event: Event,
    audience: MailingAudience,
    workshop: Workshop | None,
    note: str | None,
    key: str,
) -> MailingResult:
    """Creates the mailing named by `key` and queues one reminder per recipient, with the note
    above the standard text, in the caller's transaction (the caller commits). The same key
    again (a double click, a reload, two confirmations at once) queues nothing more and gives
    back the mailing it names. Raises NoRecipientsError for an empty audience."""
    existing = mailing_with_key(session, key)
    if existing is not None:
        return MailingResult(existing, 0, created=False)
    people = recipients(session, event, audience, workshop)
    if not people:
        raise NoRecipientsError
    note = note or None
    insert = outbox.DIALECT_INSERTS[session.get_bind().dialect.name](Mailing).values(
        event_id=event.id,
        key=key,
        audience=audience,
        workshop_id=workshop.id if audience is MailingAudience.WORKSHOP else None,
        note=note,
        created_by_id=actor.user_id,
    )
    # A concurrent confirmation with the same key waits for ours (PostgreSQL) or is serialised
    # by the write lock (SQLite), then inserts nothing and finds the mailing.
    mailing_id = session.execute(
        insert.on_conflict_do_nothing(index_elements=["key"]).returning(Mailing.id)
    ).scalar()
    if mailing_id is None:
        return MailingResult(mailing_with_key(session, key), 0, created=False)
    mailing = session.get(Mailing, mailing_id)
    queued = sum(
        outbox.queue_registration_message(
            session,
            MailKind.REMINDER,
            person.registration,
            dedupe_key=f"mailing:{mailing.id}:{person.registration.id}",
            waitlist_position=person.waitlist_position,
            note=note,
            mailing=mailing,
        )
        for person in people
    )
    audit.record(
        session,
        actor,
        audit.AuditAction.MAILING_SENT,
        f"mailing {mailing.id} to {_audience_summary(mailing)}: {queued} messages",
        event=event,
        after={
            "mailing": mailing.id,
            "audience": audience.value,
            "workshop": workshop.number if mailing.workshop_id else None,
            "note": note,
            "queued": queued,
        },
    )
    session.flush()
    return MailingResult(mailing, queued, created=True)


def mailing_with_key(session: Session, key: str) -> Mailing | None:
    return session.scalar(select(Mailing).where(Mailing.key == key))


def _audience_summary(mailing: Mailing) -> str:
    if mailing.audience is MailingAudience.WORKSHOP and mailing.workshop is not None:
        return f"workshop {mailing.workshop.number}"
    return mailing.audience.value


@dataclass(frozen=True)
class Progress:
    """A mailing's messages by state; `queued` counts those being sent too."""

    queued: int = 0
    sent: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.sent + self.failed

    @property
    def finished(self) -> int:
        return self.sent + self.failed

    @property
    def done(self) -> bool:
        return self.queued == 0

    @property
    def percent(self) -> int:
        return 100 if not self.total else self.finished * 100 // self.total


def _progress_of(counts: dict[OutboxState, int]) -> Progress:
    return Progress(
        queued=counts.get(OutboxState.QUEUED, 0) + counts.get(OutboxState.SENDING, 0),
        sent=counts.get(OutboxState.SENT, 0),
        failed=counts.get(OutboxState.FAILED, 0),
    )


def progress_where(session: Session, condition: ColumnElement[bool]) -> Progress:
    """The progress of the messages that match `condition`."""
    rows = session.execute(
        select(OutboxMessage.state, func.count()).where(condition).group_by(OutboxMessage.state)
    ).all()
    return _progress_of(dict(rows))


def mailing_progress(session: Session, mailing: Mailing) -> Progress:
    return progress_where(session, OutboxMessage.mailing_id == mailing.id)


def failed_messages(session: Session, mailing: Mailing, limit: int = 100) -> list[OutboxMessage]:
    """The messages that will not be sent, with the server's reply."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.mailing_id == mailing.id,
                OutboxMessage.state == OutboxState.FAILED,
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class MailingSummary:
    mailing: Mailing
    progress: Progress


def past_mailings(session: Session, event: Event) -> list[MailingSummary]:
    """The event's mailings, newest first, each with its figures (two queries)."""
    mailings = session.scalars(
        select(Mailing)
        .where(Mailing.event_id == event.id)
        .options(joinedload(Mailing.workshop), joinedload(Mailing.created_by))
        .order_by(Mailing.created_at.desc(), Mailing.id.desc())
    ).all()
    counts: dict[int, dict[OutboxState, int]] = {mailing.id: {} for mailing in mailings}
    rows = session.execute(
        select(OutboxMessage.mailing_id, OutboxMessage.state, func.count())
        .where(OutboxMessage.mailing_id.in_(counts))
        .group_by(OutboxMessage.mailing_id, OutboxMessage.state)
    )
    for mailing_id, state, number in rows:
        counts[mailing_id][state] = number
    return [MailingSummary(mailing, _progress_of(counts[mailing.id])) for mailing in mailings]
