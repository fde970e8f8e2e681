"""The data model: an event, its programme and workshops, registrations and the mail outbox."""

from __future__ import annotations

import enum
import secrets
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .database import UTCDateTime, utcnow
from .extensions import db


class Event(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    kicker: Mapped[str | None] = mapped_column(String(200))
    organiser: Mapped[str | None] = mapped_column(String(300))
    context: Mapped[str | None] = mapped_column(Text)
    tagline: Mapped[str | None] = mapped_column(Text)
    intro: Mapped[str | None] = mapped_column(Text)
    questions: Mapped[list[str]] = mapped_column(JSON, default=list)
    questions_outro: Mapped[str | None] = mapped_column(Text)
    registration_note: Mapped[str | None] = mapped_column(Text)
    date: Mapped[date] = mapped_column(Date)
    # The real date when a demo moved the event (see `event load --date`).
    original_date: Mapped[date | None] = mapped_column(Date)
    starts: Mapped[time] = mapped_column(Time)
    ends: Mapped[time] = mapped_column(Time)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Brussels")
    # The language the event's own texts are written in, whatever language the visitor reads.
    language: Mapped[str] = mapped_column(String(16), default="fr", server_default="fr")
    venue: Mapped[str] = mapped_column(String(300))
    address: Mapped[str] = mapped_column(String(500))
    contact_email: Mapped[str] = mapped_column(String(320))
    lunch_offered: Mapped[bool] = mapped_column(Boolean, default=True)
    registration_opens: Mapped[datetime | None] = mapped_column(UTCDateTime)
    registration_closes: Mapped[datetime] = mapped_column(UTCDateTime)
    published_on: Mapped[date | None] = mapped_column(Date)
    updated_on: Mapped[date | None] = mapped_column(Date)

    programme: Mapped[list[ProgrammeItem]] = relationship(
        back_populates="event", order_by="ProgrammeItem.position", cascade="all, delete-orphan"
    )
    workshops: Mapped[list[Workshop]] = relationship(
        back_populates="event", order_by="Workshop.number"
    )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=self.zone)

    @property
    def starts_at(self) -> datetime:
        return self.local(self.date, self.starts)

    @property
    def ends_at(self) -> datetime:
        return self.local(self.date, self.ends)

    @property
    def place(self) -> str:
        """The venue and its address, without saying the venue twice when the address has it."""
        return self.address if self.venue in self.address else f"{self.venue}, {self.address}"

    @property
    def workshops_item(self) -> ProgrammeItem | None:
        return next((item for item in self.programme if item.kind == "workshops"), None)


class ProgrammeItem(db.Model):
    __tablename__ = "programme_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    starts: Mapped[time] = mapped_column(Time)
    ends: Mapped[time | None] = mapped_column(Time)
    title: Mapped[str] = mapped_column(String(300))
    speakers: Mapped[str | None] = mapped_column(String(500))
    # plenary, workshops, break, round-table, closing, social: drives the page's layout.
    kind: Mapped[str] = mapped_column(String(32), default="plenary")
    heading: Mapped[str | None] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)

    event: Mapped[Event] = relationship(back_populates="programme")


class Workshop(db.Model):
    __table_args__ = (
        UniqueConstraint("event_id", "number", name="uq_workshop_event_number"),
        CheckConstraint("capacity >= 0", name="capacity_not_negative"),
        CheckConstraint(
            "seats_taken >= 0 AND seats_taken <= capacity", name="seats_within_capacity"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    room: Mapped[str | None] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer)
    # Kept in step with confirmed registrations by the seat functions, so that taking a seat is
    # one conditional UPDATE that the database serialises.
    seats_taken: Mapped[int] = mapped_column(Integer, default=0)

    event: Mapped[Event] = relationship(back_populates="workshops")

    @property
    def seats_left(self) -> int:
        return self.capacity - self.seats_taken


def stored_as_text(enum_class: type[enum.StrEnum], name: str, length: int = 16) -> Enum:
    """An enum stored as its values in a short text column with a CHECK constraint, the same
    on SQLite and PostgreSQL."""
    return Enum(
        enum_class,
        native_enum=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
        create_constraint=True,
        name=name,
    )


def new_checkin_code() -> str:
    return secrets.token_urlsafe(16)


class RegistrationStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"


class Registration(db.Model):
    __table_args__ = (
        # One live registration per address and event; a cancelled one may register again.
        Index(
            "uq_registration_event_email_live",
            "event_id",
            "email_normalised",
            unique=True,
            sqlite_where=text("status != 'cancelled'"),
            postgresql_where=text("status != 'cancelled'"),
        ),
        Index("ix_registration_workshop_status", "workshop_id", "status", "waitlisted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"))
    workshop_id: Mapped[int] = mapped_column(ForeignKey("workshop.id"))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320))
    email_normalised: Mapped[str] = mapped_column(String(320))
    organisation: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[RegistrationStatus] = mapped_column(
        stored_as_text(RegistrationStatus, "registration_status")
    )
    lunch: Mapped[bool] = mapped_column(Boolean)
    dietary: Mapped[str | None] = mapped_column(String(500))
    language: Mapped[str] = mapped_column(String(8))
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The waiting list is served in the order people joined it (promotion: a later issue).
    waitlisted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    manage_token: Mapped[str] = mapped_column(String(64), unique=True)
    # Printed as a QR code in the e-mails: the check-in link that organisers scan on the day.
    checkin_code: Mapped[str] = mapped_column(String(32), unique=True, default=new_checkin_code)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the dashboard's search matches, case-folded in Python: SQLite's lower() folds ASCII
    # only, and one column scans faster than three. Kept up to date by the listener below.
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")

    event: Mapped[Event] = relationship()
    workshop: Mapped[Workshop] = relationship()

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


def search_text_of(first_name: str, last_name: str, email: str, organisation: str | None) -> str:
    return "\n".join([f"{first_name} {last_name}", email, organisation or ""]).casefold()


@event.listens_for(Registration, "before_insert")
@event.listens_for(Registration, "before_update")
def _keep_search_text(_mapper, _connection, registration: Registration) -> None:
    registration.search_text = search_text_of(
        registration.first_name,
        registration.last_name,
        registration.email,
        registration.organisation,
    )


class OutboxState(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class MailKind(enum.StrEnum):
    CONFIRMATION = "confirmation"
    WAITLISTED = "waitlisted"
    PROMOTED = "promoted"
    MANAGEMENT_LINK = "management-link"
    REMINDER = "reminder"
    CANCELLED = "cancelled"


class OutboxMessage(db.Model):
    """An e-mail, rendered when queued, that the mail job delivers."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[MailKind] = mapped_column(stored_as_text(MailKind, "mail_kind", length=40))
    # The organisers' mailing this message belongs to, if any.
    mailing_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailing.id", ondelete="SET NULL"), index=True
    )
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("registration.id", ondelete="SET NULL"), index=True
    )
    # Makes queueing idempotent: one reminder per registration, one copy per mailing.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    recipient: Mapped[str] = mapped_column(String(320))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    calendar: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    state: Mapped[OutboxState] = mapped_column(
        stored_as_text(OutboxState, "outbox_state"), default=OutboxState.QUEUED
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Which worker's pass holds the lease: its updates apply only while it still does.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MailingAudience(enum.StrEnum):
    CONFIRMED = "confirmed"  # everyone with a seat
    WORKSHOP = "workshop"  # the seated participants of one workshop
    WAITING = "waiting"  # everyone on a waiting list


class Mailing(db.Model):
    """A mailing an organiser sends from the dashboard: its audience, its note, its messages."""

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("event.id", ondelete="CASCADE"), index=True)
    # Makes a double click or a reload of the confirmation queue nothing more.
    key: Mapped[str] = mapped_column(String(100), unique=True)
    audience: Mapped[MailingAudience] = mapped_column(
        stored_as_text(MailingAudience, "mailing_audience")
    )
    workshop_id: Mapped[int | None] = mapped_column(ForeignKey("workshop.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    event: Mapped[Event] = relationship()
    workshop: Mapped[Workshop | None] = relationship()
    created_by: Mapped[User | None] = relationship()


class Role(enum.StrEnum):
    ORGANISER = "organiser"
    ADMIN = "admin"


class User(db.Model):
    """An organiser or an admin of the dashboard."""

    __tablename__ = "user_account"  # "user" is reserved in PostgreSQL

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(stored_as_text(Role, "user_role"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Part of the session's user id: changing it (disable, new password) ends every session.
    session_nonce: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_hex(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Flask-Login's user interface.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return f"{self.id}:{self.session_nonce}"

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class AuditEntry(db.Model):
    """Who changed what, when, with the values before and after."""

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # "admin:<e-mail>", "organiser:<e-mail>", "participant" or "system".
    actor: Mapped[str] = mapped_column(String(340))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(60), index=True)
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("event.id", ondelete="CASCADE"), index=True
    )
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("registration.id", ondelete="SET NULL"), index=True
    )
    summary: Mapped[str] = mapped_column(String(500))
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
