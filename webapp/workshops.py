"""What admins change about the workshops: their capacity, and the registration window.

Plain functions over a SQLAlchemy session; they know nothing of HTTP. The caller commits.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import audit
from .database import utcnow
from .models import Event, Workshop
from .registration import RegistrationWindow, promote_from_waiting_list, registration_window

# Far above any room; keeps a typing slip (or 10**12) out of a 32-bit column.
MAX_CAPACITY = 10_000


class CapacityOutOfRangeError(Exception):
    """Raised for a capacity below 0 or above MAX_CAPACITY."""


class CapacityBelowSeatsError(Exception):
    """Raised when the new capacity is below the seats already taken; nothing changed."""

    def __init__(self, seats_taken: int):
        super().__init__(seats_taken)
        self.seats_taken = seats_taken


def change_capacity(
    session: Session,
    actor: audit.Actor,
    workshop: Workshop,
    capacity: int,
    now: datetime | None = None,
) -> int:
    """Sets the workshop's capacity, never below the seats already taken. Seats that a larger
    capacity opens go to the people waiting, in order, each with an e-mail, while the event is
    still to come. Returns how many were promoted."""
    now = now or utcnow()
    if not 0 <= capacity <= MAX_CAPACITY:
        raise CapacityOutOfRangeError
    # The row lock makes a registration taking a seat wait for our decision (PostgreSQL;
    # SQLite's BEGIN IMMEDIATE already serialises writers). The conditional UPDATE and the
    # seats_within_capacity CHECK constraint hold even if a caller forgot the lock.
    before, seats_taken = session.execute(
        select(Workshop.capacity, Workshop.seats_taken)
        .where(Workshop.id == workshop.id)
        .with_for_update()
    ).one()
    changed = session.execute(
        update(Workshop)
        .where(Workshop.id == workshop.id, Workshop.seats_taken <= capacity)
        .values(capacity=capacity)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:
        raise CapacityBelowSeatsError(seats_taken)
    session.expire(workshop, ["capacity", "seats_taken"])
    promoted = (
        promote_from_waiting_list(session, workshop, actor) if now < workshop.event.starts_at else 0
    )
    if capacity != before:
        audit.record(
            session,
            actor,
            audit.AuditAction.WORKSHOP_CAPACITY_CHANGED,
            f"workshop {workshop.number}: capacity {before} → {capacity}"
            + (f", {promoted} promoted from the waiting list" if promoted else ""),
            event=workshop.event,
            before={"capacity": before},
            after={"capacity": capacity, "promoted": promoted},
            at=now,
        )
    session.flush()
    return promoted


def default_registration_closes(event: Event) -> datetime:
    """Unless the event file says otherwise, registration closes at midnight starting the
    event's day (the end of the day before), in the event's time zone."""
    return datetime.combine(event.date, time(), tzinfo=event.zone).astimezone(UTC)


class AlreadyClosedError(Exception):
    """Raised when registration is already closed (or the event is over)."""


class AlreadyOpenError(Exception):
    """Raised when registration to reopen is not closed."""


class TooLateToReopenError(Exception):
    """Raised when the default closing time has passed: reopening would close at once."""


def close_registration(
    session: Session, actor: audit.Actor, event: Event, now: datetime | None = None
) -> None:
    """Closes registration now: every registration from now on is refused."""
    now = now or utcnow()
    if registration_window(event, now) in (
        RegistrationWindow.CLOSED,
        RegistrationWindow.EVENT_OVER,
    ):
        raise AlreadyClosedError
    _set_registration_closes(
        session, actor, event, now, audit.AuditAction.EVENT_REGISTRATION_CLOSED, now
    )


def reopen_registration(
    session: Session, actor: audit.Actor, event: Event, now: datetime | None = None
) -> None:
    """Reopens registration until its default closing time, if that is still to come."""
    now = now or utcnow()
    closes = default_registration_closes(event)
    if closes <= now:
        raise TooLateToReopenError
    if registration_window(event, now) is not RegistrationWindow.CLOSED:
        raise AlreadyOpenError
    _set_registration_closes(
        session, actor, event, closes, audit.AuditAction.EVENT_REGISTRATION_REOPENED, now
    )


def _set_registration_closes(
    session: Session,
    actor: audit.Actor,
    event: Event,
    closes: datetime,
    action: audit.AuditAction,
    now,
) -> None:
    before = event.registration_closes
    event.registration_closes = closes
    audit.record(
        session,
        actor,
        action,
        f"registration closes {closes.isoformat(timespec='minutes')}",
        event=event,
        before={"registration_closes": before.isoformat()},
        after={"registration_closes": closes.isoformat()},
        at=now,
    )
    session.flush()
