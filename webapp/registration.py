"""Registrations: the window, seat allocation, the waiting list, duplicate addresses and
cancellation.

Plain functions over a SQLAlchemy session; they know nothing of HTTP.
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import audit, outbox
from .database import utcnow
from .models import (
    Event,
    MailKind,
    OutboxMessage,
    OutboxState,
    Registration,
    RegistrationStatus,
    Workshop,
)


class RegistrationWindow(enum.StrEnum):
    NOT_YET_OPEN = "not-yet-open"
    OPEN = "open"
    CLOSED = "closed"
    EVENT_OVER = "event-over"


def registration_window(event: Event, now: datetime | None = None) -> RegistrationWindow:
    now = now or utcnow()
    if now >= event.ends_at:
        return RegistrationWindow.EVENT_OVER
    if now >= event.registration_closes:
        return RegistrationWindow.CLOSED
    if event.registration_opens and now < event.registration_opens:
        return RegistrationWindow.NOT_YET_OPEN
    return RegistrationWindow.OPEN


class RegistrationClosedError(Exception):
    """Raised when a registration arrives outside the registration window."""


class UnknownWorkshopError(Exception):
    """Raised when the chosen workshop does not belong to the event."""


def normalise_email(email: str) -> str:
    return email.strip().casefold()


@dataclass(frozen=True)
class Applicant:
    first_name: str
    last_name: str
    email: str
    organisation: str | None
    workshop_number: int
    lunch: bool
    dietary: str | None
    language: str


class Outcome(enum.StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    # The address already holds a registration: nothing registered, its owner gets a mail.
    ALREADY_REGISTERED = "already-registered"


@dataclass(frozen=True)
class RegistrationResult:
    outcome: Outcome
    email: str
    registration: Registration | None = None
    waitlist_position: int | None = None

    @property
    def seats_changed(self) -> bool:
        return self.outcome is Outcome.CONFIRMED


@dataclass(frozen=True)
class WorkshopAvailability:
    workshop: Workshop
    seats_taken: int
    waitlisted: int

    @property
    def capacity(self) -> int:
        return self.workshop.capacity

    @property
    def seats_left(self) -> int:
        return max(self.capacity - self.seats_taken, 0)

    @property
    def is_full(self) -> bool:
        return self.seats_left == 0

    def is_filling_up(self, threshold: int) -> bool:
        """Few seats left, and at least half of the workshop's seats taken: a small workshop
        nobody has chosen yet is not "almost full"."""
        return (
            not self.is_full
            and self.seats_left <= threshold
            and self.seats_taken >= self.seats_left
        )


def workshop_availability(session: Session, event: Event) -> list[WorkshopAvailability]:
    """Every workshop of the event with its seats and waiting list, in one query."""
    waitlisted = (
        select(Registration.workshop_id, func.count().label("waitlisted"))
        .where(Registration.status == RegistrationStatus.WAITLISTED)
        .group_by(Registration.workshop_id)
        .subquery()
    )
    rows = session.execute(
        select(Workshop, func.coalesce(waitlisted.c.waitlisted, 0))
        .outerjoin(waitlisted, waitlisted.c.workshop_id == Workshop.id)
        .where(Workshop.event_id == event.id)
        .order_by(Workshop.number)
    ).all()
    return [WorkshopAvailability(w, w.seats_taken, count) for w, count in rows]


def take_seat(session: Session, workshop_id: int) -> bool:
    """Takes one seat if one is left. The database re-checks the condition under its row lock,
    so concurrent calls can never push a workshop past its capacity."""
    result = session.execute(
        update(Workshop)
        .where(Workshop.id == workshop_id, Workshop.seats_taken < Workshop.capacity)
        .values(seats_taken=Workshop.seats_taken + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def waitlist_position(session: Session, registration: Registration) -> int | None:
    if registration.status is not RegistrationStatus.WAITLISTED:
        return None
    ahead_or_same = or_(
        Registration.waitlisted_at < registration.waitlisted_at,
        and_(
            Registration.waitlisted_at == registration.waitlisted_at,
            Registration.id <= registration.id,
        ),
    )
    return session.scalar(
        select(func.count())
        .select_from(Registration)
        .where(
            Registration.workshop_id == registration.workshop_id,
            Registration.status == RegistrationStatus.WAITLISTED,
            ahead_or_same,
        )
    )


def promote_from_waiting_list(
    session: Session, workshop: Workshop, actor: audit.Actor = audit.SYSTEM
) -> int:
    """Gives the workshop's free seats to the people waiting, in the order they joined, each
    with an e-mail. Returns how many were promoted. The caller commits."""
    promoted = 0
    while True:
        first = session.scalar(
            select(Registration)
            .where(
                Registration.workshop_id == workshop.id,
                Registration.status == RegistrationStatus.WAITLISTED,
            )
            .order_by(Registration.waitlisted_at, Registration.id)
            .limit(1)
            .with_for_update()
        )
        if first is None or not take_seat(session, workshop.id):
            return promoted
        first.status = RegistrationStatus.CONFIRMED
        first.waitlisted_at = None
        session.flush()
        # The waiting-list notice, if it has not gone yet, would now be wrong.
        session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.registration_id == first.id,
                OutboxMessage.kind == MailKind.WAITLISTED,
                OutboxMessage.state == OutboxState.QUEUED,
            )
        )
        outbox.queue_registration_message(session, MailKind.PROMOTED, first)
        audit.record(
            session,
            actor,
            "registration.promoted",
            f"{first.full_name}: seat in workshop {workshop.number}",
            registration=first,
            before={"status": RegistrationStatus.WAITLISTED},
            after={"status": RegistrationStatus.CONFIRMED},
        )
        promoted += 1


def can_cancel(registration: Registration, now: datetime | None = None) -> bool:
    """A participant may cancel until the event starts; then a freed seat helps nobody."""
    return (
        registration.status is not RegistrationStatus.CANCELLED
        and (now or utcnow()) < registration.event.starts_at
    )


class NothingToCancelError(Exception):
    """Raised when the registration is already cancelled (or gone)."""


def cancel_registration(
    session: Session,
    registration: Registration,
    actor: audit.Actor,
    now: datetime | None = None,
    notify_participant: bool = True,
) -> int:
    """Cancels the registration: its seat goes to the first person waiting (told by e-mail)
    while the event is still to come, its messages not yet sent are withdrawn, and the
    participant gets a cancellation e-mail unless told otherwise. Returns how many were
    promoted. The caller commits (or rolls back after NothingToCancelError)."""
    now = now or utcnow()
    # The row lock makes a concurrent cancel or promotion of this person wait, then we read the
    # status it left: a seat is freed once, and someone promoted meanwhile is still cancelled.
    status = session.scalar(
        select(Registration.status).where(Registration.id == registration.id).with_for_update()
    )
    if status is None or status is RegistrationStatus.CANCELLED:
        raise NothingToCancelError
    session.execute(
        update(Registration)
        .where(Registration.id == registration.id)
        .values(status=RegistrationStatus.CANCELLED, cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(registration)
    # A reminder or a confirmation still queued would now say something false.
    session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.registration_id == registration.id,
            OutboxMessage.state == OutboxState.QUEUED,
        )
    )
    promoted = 0
    if status is RegistrationStatus.CONFIRMED:
        session.execute(
            update(Workshop)
            .where(Workshop.id == registration.workshop_id)
            .values(seats_taken=Workshop.seats_taken - 1)
            .execution_options(synchronize_session=False)
        )
        if now < registration.event.starts_at:
            promoted = promote_from_waiting_list(session, registration.workshop, actor)
    if notify_participant:
        outbox.queue_registration_message(
            session,
            MailKind.CANCELLED,
            registration,
            dedupe_key=f"cancelled:{registration.id}",
            # Only a seat came with a calendar entry.
            withdraw_calendar=status is RegistrationStatus.CONFIRMED,
        )
    audit.record(
        session,
        actor,
        "registration.cancelled",
        f"{registration.full_name}, workshop {registration.workshop.number}"
        + ("" if notify_participant else " (no e-mail)"),
        registration=registration,
        before={"status": status},
        after={"status": RegistrationStatus.CANCELLED},
        at=now,
    )
    session.flush()
    return promoted


def find_live_registration(session: Session, event: Event, email: str) -> Registration | None:
    return session.scalar(
        select(Registration).where(
            Registration.event_id == event.id,
            Registration.email_normalised == normalise_email(email),
            Registration.status != RegistrationStatus.CANCELLED,
        )
    )


# What secrets.token_urlsafe(32) makes; anything else (a NUL byte, say) never reaches the database.
MANAGE_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def find_by_token(session: Session, token: str) -> Registration | None:
    if not MANAGE_TOKEN.fullmatch(token):
        return None
    return session.scalar(select(Registration).where(Registration.manage_token == token))


def register(
    session: Session, event: Event, applicant: Applicant, now: datetime | None = None
) -> RegistrationResult:
    """Registers the applicant: the seat (or a place on the waiting list), the registration and
    its confirmation e-mail are saved together or not at all, when the caller commits."""
    now = now or utcnow()
    if registration_window(event, now) is not RegistrationWindow.OPEN:
        raise RegistrationClosedError
    workshop = session.scalar(
        select(Workshop).where(
            Workshop.event_id == event.id, Workshop.number == applicant.workshop_number
        )
    )
    if workshop is None:
        raise UnknownWorkshopError

    existing = find_live_registration(session, event, applicant.email)
    if existing is not None:
        return _send_management_link(session, existing, applicant.email, now)

    try:
        # A savepoint: if the same address registered a moment earlier, the seat is given back.
        with session.begin_nested():
            registration = _insert_registration(session, event, workshop, applicant, now)
    except IntegrityError:
        existing = find_live_registration(session, event, applicant.email)
        if existing is None:
            raise
        return _send_management_link(session, existing, applicant.email, now)
    seated = registration.status is RegistrationStatus.CONFIRMED
    position = waitlist_position(session, registration)
    outbox.queue_registration_message(
        session,
        MailKind.CONFIRMATION if seated else MailKind.WAITLISTED,
        registration,
        dedupe_key=f"registered:{registration.id}",
        waitlist_position=position,
    )
    audit.record(
        session,
        audit.PARTICIPANT,
        "registration.created",
        f"{registration.full_name}, workshop {workshop.number}"
        + ("" if seated else f", waiting list #{position}"),
        registration=registration,
        after={"status": registration.status, "workshop": workshop.number},
        at=now,
    )
    session.flush()
    outcome = Outcome.CONFIRMED if seated else Outcome.WAITLISTED
    return RegistrationResult(outcome, registration.email, registration, position)


def _insert_registration(
    session: Session, event: Event, workshop: Workshop, applicant: Applicant, now: datetime
) -> Registration:
    seated = take_seat(session, workshop.id)
    if not seated:
        # Joining the waiting list one at a time per workshop (the row lock; SQLite's BEGIN
        # IMMEDIATE already serialises) gives everyone a distinct, lasting position. A seat
        # may have opened (a larger capacity) while we waited for the lock.
        session.execute(select(Workshop.id).where(Workshop.id == workshop.id).with_for_update())
        seated = take_seat(session, workshop.id)
    registration = Registration(
        event=event,
        workshop=workshop,
        first_name=applicant.first_name,
        last_name=applicant.last_name,
        email=applicant.email.strip(),
        email_normalised=normalise_email(applicant.email),
        organisation=applicant.organisation,
        status=RegistrationStatus.CONFIRMED if seated else RegistrationStatus.WAITLISTED,
        lunch=applicant.lunch if event.lunch_offered else False,
        dietary=applicant.dietary,
        language=applicant.language,
        consent_at=now,
        created_at=now,
        waitlisted_at=None if seated else utcnow(),
        manage_token=secrets.token_urlsafe(32),
    )
    session.add(registration)
    session.flush()
    return registration


def _send_management_link(
    session: Session, registration: Registration, email: str, now: datetime
) -> RegistrationResult:
    # At most one such mail an hour, so that the form cannot be used to flood someone's inbox.
    key = f"management-link:{registration.id}:{now:%Y-%m-%dT%H}"
    outbox.queue_registration_message(
        session,
        MailKind.MANAGEMENT_LINK,
        registration,
        dedupe_key=key,
        waitlist_position=waitlist_position(session, registration),
    )
    session.flush()
    return RegistrationResult(Outcome.ALREADY_REGISTERED, email.strip())
