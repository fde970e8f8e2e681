"""Check-in on the day: the link in each participant's QR code, and recording their arrival
(or undoing it) once, whoever taps first."""

from __future__ import annotations

import base64
import io
import re
from datetime import datetime, time

import segno
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .database import utcnow
from .links import public_url
from .models import Event, MailKind, Registration, RegistrationStatus

# What models.new_checkin_code makes, with room to spare; anything else (a NUL byte, say) never
# reaches the database.
CHECKIN_CODE = re.compile(r"[A-Za-z0-9_-]{16,32}")


# The mails that bring a participant to the door carry the QR code; the others (waiting list,
# cancellation) have no seat to check in to.
QR_CODE_KINDS = frozenset({MailKind.CONFIRMATION, MailKind.PROMOTED, MailKind.REMINDER})
# How the HTML part refers to the PNG attached to the mail: clients that block data: URIs and
# SVG (Gmail) show an inline attachment.
QR_CODE_CONTENT_ID = "checkin-qr@atelier"
QR_CODE_SOURCE = f"cid:{QR_CODE_CONTENT_ID}"


class NotSeatedError(Exception):
    """Only a confirmed registration has a seat to arrive at: not one waiting, not one cancelled."""

    def __init__(self, status: RegistrationStatus):
        super().__init__(status)
        self.status = status


def checkin_url(code: str) -> str:
    """The absolute address that the participant's QR code holds."""
    return public_url("admin.checkin_code", code=code)


def mail_checkin_url(kind: MailKind, registration: Registration) -> str | None:
    """The check-in link a mail of this kind shows, if it shows one."""
    if kind in QR_CODE_KINDS and registration.status is RegistrationStatus.CONFIRMED:
        return checkin_url(registration.checkin_code)
    return None


def with_qr_code_shown(html: str, url: str | None) -> str:
    """The mail's HTML with its QR code as a data: image, for a page that shows the mail
    (a sent mail carries the PNG as an inline part instead: mail clients block data: images)."""
    if url is None:
        return html
    png = base64.b64encode(checkin_qr_png(url)).decode()
    return html.replace(QR_CODE_SOURCE, f"data:image/png;base64,{png}")


# Any of the 8 masks makes a valid code; scoring them all (segno's default) took 4 of the 7 ms
# that drawing one cost the mail worker. Mask 2 scores best on average for check-in links, and
# is the one segno picks most often for them; tests/test_admin_checkin.py scans the result.
QR_CODE_MASK = 2


def checkin_qr_png(url: str) -> bytes:
    """A small PNG (about 500 bytes, 164 px): a phone at the door reads it from a screen or paper.
    Level L keeps the code at its smallest version, hence the largest modules for that size."""
    image = io.BytesIO()
    segno.make_qr(url, error="l", mask=QR_CODE_MASK).save(image, kind="png", scale=4, border=4)
    return image.getvalue()


def find_by_checkin_code(session: Session, event: Event, code: str) -> Registration | None:
    if not CHECKIN_CODE.fullmatch(code):
        return None
    return session.scalar(
        select(Registration).where(
            Registration.event_id == event.id, Registration.checkin_code == code
        )
    )


def arrival_time(registration: Registration) -> time | None:
    """When the participant arrived, on the event's clock."""
    if registration.checked_in_at is None:
        return None
    return registration.checked_in_at.astimezone(registration.event.zone).time()


def _lock(session: Session, registration: Registration) -> None:
    """Makes a concurrent tap on the same person wait, then read what this one did."""
    session.refresh(registration, with_for_update=True)


def check_in(
    session: Session, actor: audit.Actor, registration: Registration, now: datetime | None = None
) -> bool:
    """Records the participant's arrival. Returns False, changing nothing, when they were already
    checked in (a second tap, or a colleague at the other door). The caller commits."""
    _lock(session, registration)
    if registration.status is not RegistrationStatus.CONFIRMED:
        raise NotSeatedError(registration.status)
    if registration.checked_in_at is not None:
        return False
    now = now or utcnow()
    registration.checked_in_at = now
    audit.record(
        session,
        actor,
        audit.AuditAction.REGISTRATION_CHECKED_IN,
        f"{registration.full_name}, workshop {registration.workshop.number}",
        registration=registration,
        before={"checked_in_at": None},
        after={"checked_in_at": now.isoformat()},
        at=now,
    )
    session.flush()
    return True


def undo_check_in(
    session: Session, actor: audit.Actor, registration: Registration, now: datetime | None = None
) -> bool:
    """Takes back a check-in made by mistake. Returns False, changing nothing, when the
    participant was not checked in. The caller commits."""
    _lock(session, registration)
    arrived_at = registration.checked_in_at
    if arrived_at is None:
        return False
    registration.checked_in_at = None
    audit.record(
        session,
        actor,
        audit.AuditAction.REGISTRATION_CHECK_IN_UNDONE,
        f"{registration.full_name}, workshop {registration.workshop.number}",
        registration=registration,
        before={"checked_in_at": arrived_at.isoformat()},
        after={"checked_in_at": None},
        at=now,
    )
    session.flush()
    return True
