"""Registrations: the window, seat allocation, the waiting list, duplicate addresses and
cancellation.

Plain functions over a SQLAlchemy session; they know nothing of HTTP.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import audit, outbox
from .database import utcnow
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
from .roster import waitlist_positions


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
    return waitlist_positions(session, [registration]).get(registration.id)


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
        # The waiting-list notice, or a mailing to the waiting list, not gone yet, would now
        # say something wrong.
        to_the_waiting_list = select(Mailing.id).where(Mailing.audience == MailingAudience.WAITING)
        session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.registration_id == first.id,
                OutboxMessage.state == OutboxState.QUEUED,
                or_(
                    OutboxMessage.kind == MailKind.WAITLISTED,
                    OutboxMessage.mailing_id.in_(to_the_waiting_list),
                ),
            )
        )
        outbox.queue_registration_message(session, MailKind.PROMOTED, first)
        audit.record(
            session,
            actor,
            audit.AuditAction.REGISTRATION_PROMOTED,
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
    # A seat is freed once, and someone promoted meanwhile is still cancelled.
    try:
        status = _lock_live_status(session, registration)
    except RegistrationCancelledError as error:
        raise NothingToCancelError from error
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
        audit.AuditAction.REGISTRATION_CANCELLED,
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
    # The event's workshops, loaded once per session (the form's choices have them already).
    workshop = next((w for w in event.workshops if w.number == applicant.workshop_number), None)
    if workshop is None:
        raise UnknownWorkshopError

    try:
        # The unique index finds an address already registered (a moment ago or long before)
        # without a query of our own; the savepoint gives its seat back.
        with session.begin_nested():
            registration = _insert_registration(session, event, workshop, applicant, now)
    except IntegrityError:
        existing = find_live_registration(session, event, applicant.email)
        if existing is None:
            raise
        return _send_management_link(session, existing, applicant.email, now)
    seated = registration.status is RegistrationStatus.CONFIRMED
    position = waitlist_position(session, registration)
    # No dedupe key: the registration is new, so is its mail (and a key would cost a query).
    outbox.queue_registration_message(
        session,
        MailKind.CONFIRMATION if seated else MailKind.WAITLISTED,
        registration,
        waitlist_position=position,
    )
    audit.record(
        session,
        audit.PARTICIPANT,
        audit.AuditAction.REGISTRATION_CREATED,
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


class RegistrationCancelledError(Exception):
    """Raised when a change needs a live registration and this one is cancelled."""


class AlreadyInWorkshopError(Exception):
    """Raised when a registration is moved to the workshop it is already in."""


class WorkshopFullError(Exception):
    """Raised when a seated person is moved to a full workshop without raising its capacity."""


@dataclass(frozen=True)
class MoveResult:
    seated: bool
    waitlist_position: int | None
    # How many people waiting for the old workshop got the seat it freed.
    promoted: int
    capacity_raised: bool


def _lock_live_status(session: Session, registration: Registration) -> RegistrationStatus:
    """Locks the registration's row (a concurrent cancel or promotion waits) and reads the
    status it has now, refreshing the object."""
    status = session.scalar(
        select(Registration.status).where(Registration.id == registration.id).with_for_update()
    )
    if status is None or status is RegistrationStatus.CANCELLED:
        raise RegistrationCancelledError
    session.refresh(registration)
    return status


def _raise_capacity_for_one(session: Session, actor: audit.Actor, workshop: Workshop) -> None:
    session.execute(
        update(Workshop)
        .where(Workshop.id == workshop.id)
        .values(capacity=Workshop.capacity + 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(workshop)
    audit.record(
        session,
        actor,
        audit.AuditAction.WORKSHOP_CAPACITY_CHANGED,
        f"Workshop {workshop.number}: capacity {workshop.capacity - 1} → {workshop.capacity}"
        " (to move a participant in)",
        event=workshop.event,
        before={"capacity": workshop.capacity - 1},
        after={"capacity": workshop.capacity},
    )


def move_registration(
    session: Session,
    actor: audit.Actor,
    registration: Registration,
    target: Workshop,
    override_capacity: bool = False,
    now: datetime | None = None,
) -> MoveResult:
    """Moves the registration to another workshop of its event. A seated person takes a seat
    there (refused with WorkshopFullError when none is left, unless `override_capacity` raises
    the capacity by one) and their old seat goes to the first person waiting; a waiting person
    takes a free seat or joins the end of the target's waiting list. The participant gets an
    e-mail naming the new workshop. The caller commits (or rolls back after an error)."""
    now = now or utcnow()
    if target.event_id != registration.event_id:
        raise UnknownWorkshopError
    status = _lock_live_status(session, registration)
    if registration.workshop_id == target.id:
        raise AlreadyInWorkshopError
    # Both workshops in one order (by id): two moves in opposite directions wait for each
    # other instead of deadlocking. Holding the target's row also gives a distinct, lasting
    # waiting position there, as the lock in `register` does.
    session.execute(
        select(Workshop.id)
        .where(Workshop.id.in_({registration.workshop_id, target.id}))
        .order_by(Workshop.id)
        .with_for_update()
    )
    old_workshop = registration.workshop
    seated = take_seat(session, target.id)
    if not seated and not override_capacity and status is RegistrationStatus.CONFIRMED:
        raise WorkshopFullError
    capacity_raised = not seated and override_capacity
    if capacity_raised:
        _raise_capacity_for_one(session, actor, target)
        seated = take_seat(session, target.id)
    promoted = 0
    if status is RegistrationStatus.CONFIRMED:
        session.execute(
            update(Workshop)
            .where(Workshop.id == old_workshop.id)
            .values(seats_taken=Workshop.seats_taken - 1)
            .execution_options(synchronize_session=False)
        )
    registration.workshop = target
    registration.status = RegistrationStatus.CONFIRMED if seated else RegistrationStatus.WAITLISTED
    registration.waitlisted_at = None if seated else utcnow()
    session.flush()
    if status is RegistrationStatus.CONFIRMED and now < registration.event.starts_at:
        promoted = promote_from_waiting_list(session, old_workshop, actor)
    for workshop in (old_workshop, target):
        session.refresh(workshop)
    # Whatever is still queued names the old workshop; an organiser's mailing still goes.
    session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.registration_id == registration.id,
            OutboxMessage.state == OutboxState.QUEUED,
            OutboxMessage.mailing_id.is_(None),
        )
    )
    position = waitlist_position(session, registration)
    outbox.queue_registration_message(
        session,
        MailKind.CONFIRMATION if seated else MailKind.WAITLISTED,
        registration,
        dedupe_key=f"moved:{registration.id}:{secrets.token_hex(8)}",
        waitlist_position=position,
        workshop_changed=True,
    )
    audit.record(
        session,
        actor,
        audit.AuditAction.REGISTRATION_MOVED,
        f"{registration.full_name}: workshop {old_workshop.number} → {target.number}"
        + ("" if seated else f", waiting list #{position}")
        + (" (capacity raised)" if capacity_raised else ""),
        registration=registration,
        before={"workshop": old_workshop.number, "status": status},
        after={"workshop": target.number, "status": registration.status},
        at=now,
    )
    session.flush()
    return MoveResult(seated, position, promoted, capacity_raised)


RESENT_KINDS = {
    RegistrationStatus.CONFIRMED: MailKind.CONFIRMATION,
    RegistrationStatus.WAITLISTED: MailKind.WAITLISTED,
    RegistrationStatus.CANCELLED: MailKind.CANCELLED,
}


def resend_confirmation(
    session: Session, actor: audit.Actor, registration: Registration, now: datetime | None = None
) -> bool:
    """Queues again the message that matches the registration's status (its confirmation, its
    waiting-list notice or its cancellation). At most one a minute, so that a double click
    sends one. Returns whether a message was queued. The caller commits."""
    now = now or utcnow()
    kind = RESENT_KINDS[registration.status]
    queued = outbox.queue_registration_message(
        session,
        kind,
        registration,
        dedupe_key=f"resent:{registration.id}:{now:%Y-%m-%dT%H:%M}",
        waitlist_position=waitlist_position(session, registration),
    )
    if queued:
        audit.record(
            session,
            actor,
            audit.AuditAction.REGISTRATION_MAIL_RESENT,
            f"{registration.full_name}: {kind} e-mail sent again",
            registration=registration,
            after={"kind": kind},
            at=now,
        )
        session.flush()
    return queued


@dataclass(frozen=True)
class ParticipantDetails:
    """What an organiser may correct in a registration (the address identifies it: never)."""

    first_name: str
    last_name: str
    organisation: str | None
    lunch: bool
    dietary: str | None

    @classmethod
    def of(cls, registration: Registration) -> ParticipantDetails:
        return cls(
            registration.first_name,
            registration.last_name,
            registration.organisation,
            registration.lunch,
            registration.dietary,
        )


def update_details(
    session: Session, actor: audit.Actor, registration: Registration, details: ParticipantDetails
) -> bool:
    """Saves the corrected details, with the fields that changed before and after in the
    audit log. Lunch stays off where the event offers none. Returns whether anything changed.
    The caller commits."""
    if not registration.event.lunch_offered:
        details = dataclasses.replace(details, lunch=False)
    current = dataclasses.asdict(ParticipantDetails.of(registration))
    wanted = dataclasses.asdict(details)
    changed = [name for name in wanted if wanted[name] != current[name]]
    if not changed:
        return False
    for name in changed:
        setattr(registration, name, wanted[name])
    audit.record(
        session,
        actor,
        audit.AuditAction.REGISTRATION_UPDATED,
        f"{registration.full_name}: {', '.join(changed)} corrected",
        registration=registration,
        before={name: current[name] for name in changed},
        after={name: wanted[name] for name in changed},
    )
    session.flush()
    return True
