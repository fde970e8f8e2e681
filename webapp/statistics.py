"""The dashboard's figures over time: registrations received per day, in the event's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from .database import utcnow
from .models import Event, Registration


@dataclass(frozen=True)
class DayCount:
    day: date
    registrations: int


def registrations_per_day(
    session: Session, event: Event, now: datetime | None = None
) -> list[DayCount]:
    """Registrations received (cancelled ones included) on each local day of the event's time
    zone, from the first registration to today, days without any included. Counted by one
    GROUP BY in the database."""
    now = now or utcnow()
    zone = event.zone
    of_event = Registration.event_id == event.id
    first = session.scalar(select(func.min(Registration.created_at)).where(of_event))
    if first is None:
        return []
    local_day = _local_day(session, Registration.created_at, zone, first, now)
    # Grouped by the label: PostgreSQL would not see two copies of the bound zone as one.
    rows = session.execute(
        select(local_day.label("day"), func.count()).where(of_event).group_by("day")
    ).all()
    counts = {_as_date(day): number for day, number in rows}
    today = now.astimezone(zone).date()
    start = min(first.astimezone(zone).date(), today)
    days = [start + timedelta(days=n) for n in range((today - start).days + 1)]
    return [DayCount(day, counts.get(day, 0)) for day in days]


def _local_day(session: Session, column, zone: ZoneInfo, since: datetime, until: datetime):
    """The local calendar day of a UTC timestamp column."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(zone.key, column))
    # SQLite knows no time zones: shift each stretch of time by the UTC offset it had
    # (summer and winter time), as Python's time zone database tells.
    *changes, (_, last_offset) = _offset_stretches(zone, since, until)
    shifts = [(column < end, f"{offset:+d} minutes") for end, offset in changes]
    modifier = (
        case(*shifts, else_=f"{last_offset:+d} minutes")
        if shifts
        else literal(f"{last_offset:+d} minutes")
    )
    return func.date(column, modifier)


def _offset_stretches(zone: ZoneInfo, since: datetime, until: datetime) -> list[tuple]:
    """(end, UTC offset in minutes) of each stretch of constant offset from `since` to `until`;
    the last one's end is None."""
    stretches = []
    moment = since.astimezone(UTC).replace(second=0, microsecond=0)
    offset = _offset_minutes(zone, moment)
    # Offsets change a few times a year, on a whole minute: stepping by hours finds each
    # change, and a bisection over minutes finds when it happened.
    while moment < until:
        step = moment + timedelta(hours=6)
        if _offset_minutes(zone, step) == offset:
            moment = step
            continue
        low, high = moment, step
        while high - low > timedelta(minutes=1):
            middle = low + timedelta(minutes=(high - low) // timedelta(minutes=1) // 2)
            if _offset_minutes(zone, middle) == offset:
                low = middle
            else:
                high = middle
        stretches.append((high, offset))
        offset = _offset_minutes(zone, high)
        moment = high
    stretches.append((None, offset))
    return stretches


def _offset_minutes(zone: ZoneInfo, moment: datetime) -> int:
    return int(moment.astimezone(zone).utcoffset() // timedelta(minutes=1))


def _as_date(value) -> date:
    # PostgreSQL gives a date, SQLite its text.
    return value if isinstance(value, date) else date.fromisoformat(value)
