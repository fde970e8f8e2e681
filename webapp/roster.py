"""Who is registered: the roster of each workshop and the registrations search.

One query for every reader: `registrations list`, the dashboard's pages and the exports.
"""

from __future__ import annotations

import enum
import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased, contains_eager, selectinload

from .models import Event, Registration, RegistrationStatus, Workshop


@dataclass(frozen=True)
class WorkshopRoster:
    workshop: Workshop
    seated: list[Registration] = field(default_factory=list)
    # In the order people joined the waiting list: position n is waiting[n - 1].
    waiting: list[Registration] = field(default_factory=list)

    @property
    def seats_left(self) -> int:
        return max(self.workshop.capacity - self.workshop.seats_taken, 0)

    @property
    def people(self) -> list[Registration]:
        return self.seated + self.waiting


@dataclass(frozen=True)
class EventRoster:
    event: Event
    workshops: list[WorkshopRoster]

    @property
    def seated(self) -> list[Registration]:
        return [r for roster in self.workshops for r in roster.seated]

    @property
    def waiting(self) -> list[Registration]:
        return [r for roster in self.workshops for r in roster.waiting]

    @property
    def lunch_count(self) -> int:
        """The caterer's number: seated participants who take lunch."""
        return sum(r.lunch for r in self.seated) if self.event.lunch_offered else 0

    @property
    def dietary_needs(self) -> list[Registration]:
        """Seated participants with a dietary need (and lunch, where lunch is asked)."""
        return [r for r in self.seated if r.dietary and (r.lunch or not self.event.lunch_offered)]

    @property
    def checked_in(self) -> int:
        return sum(r.checked_in_at is not None for r in self.seated)


def by_last_name(registrations: Iterable[Registration]) -> list[Registration]:
    """Sorted as a reader looks for a name on a list: by last name then first name, with
    accents and case ignored (Émile among the E)."""
    return sorted(registrations, key=lambda r: (folded(r.last_name), folded(r.first_name)))


def name_matches(registration: Registration, text: str) -> bool:
    """Whether every word typed is part of the name, accents and case ignored: "helene"
    finds Hélène, as someone typing fast at the door expects."""
    name = folded(registration.full_name)
    return all(word in name for word in folded(text).split())


def folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def event_roster(session: Session, event: Event, workshop_number: int | None = None) -> EventRoster:
    """Every live (not cancelled) registration, workshop by workshop: the seated in the order
    they registered, then the waiting list in its order. One query."""
    query = (
        select(Registration)
        .join(Registration.workshop)
        .options(contains_eager(Registration.workshop))
        .where(
            Registration.event_id == event.id,
            Registration.status != RegistrationStatus.CANCELLED,
        )
        .order_by(
            Workshop.number,
            Registration.status != RegistrationStatus.CONFIRMED,
            Registration.waitlisted_at,
            Registration.id,
        )
    )
    if workshop_number is not None:
        query = query.where(Workshop.number == workshop_number)
    workshops = [
        w for w in event.workshops if workshop_number is None or w.number == workshop_number
    ]
    rosters = {w.id: WorkshopRoster(w) for w in workshops}
    for registration in session.scalars(query):
        roster = rosters[registration.workshop_id]
        if registration.status is RegistrationStatus.CONFIRMED:
            roster.seated.append(registration)
        else:
            roster.waiting.append(registration)
    return EventRoster(event, list(rosters.values()))


class SortKey(enum.StrEnum):
    NAME = "name"
    EMAIL = "email"
    ORGANISATION = "organisation"
    WORKSHOP = "workshop"
    STATUS = "status"
    REGISTERED = "registered"


SORT_COLUMNS = {
    SortKey.NAME: (func.lower(Registration.last_name), func.lower(Registration.first_name)),
    SortKey.EMAIL: (Registration.email_normalised,),
    SortKey.ORGANISATION: (func.lower(func.coalesce(Registration.organisation, "")),),
    SortKey.WORKSHOP: (Workshop.number,),
    SortKey.STATUS: (Registration.status,),
    SortKey.REGISTERED: (Registration.created_at,),
}


@dataclass(frozen=True)
class RegistrationSearch:
    text: str = ""
    workshop_number: int | None = None
    status: RegistrationStatus | None = None
    lunch: bool | None = None
    sort: SortKey = SortKey.REGISTERED
    descending: bool = False
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True)
class SearchPage:
    rows: list[Registration]
    total: int
    page: int
    per_page: int
    # Registration id -> position, for the waiting people among the rows.
    waitlist_positions: dict[int, int] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(math.ceil(self.total / self.per_page), 1)


def search_registrations(session: Session, event: Event, search: RegistrationSearch) -> SearchPage:
    """One page of the event's registrations (cancelled ones too, unless filtered out)
    matching a part of the name, e-mail or organisation, and the filters."""
    conditions = _search_conditions(event, search)
    order = [c.desc() if search.descending else c.asc() for c in SORT_COLUMNS[search.sort]]
    # Only the sort by workshop joins the workshops: joining every matching row cost more than
    # the rest of the query with 10,000 registrations.
    ranked = select(Registration.id).where(*conditions).order_by(*order, Registration.id)
    if search.sort is SortKey.WORKSHOP:
        ranked = ranked.join(Registration.workshop)

    def page_of(page: int):
        offset = (page - 1) * search.per_page
        return ranked.limit(search.per_page).offset(offset)

    def count_all() -> int:
        return session.scalar(select(func.count()).select_from(Registration).where(*conditions))

    page = max(search.page, 1)
    if search.text.strip():
        # Matching the text is the costly part of the scan: one pass both counts and pages.
        found = session.execute(page_of(page).add_columns(func.count().over())).all()
        if not found and page > 1:  # past the last page: the last one
            page = _last_page(count_all(), search.per_page)
            found = session.execute(page_of(page).add_columns(func.count().over())).all()
        total = found[0][1] if found else 0
        ids = [registration_id for registration_id, _total in found]
    else:
        total = count_all()
        page = min(page, _last_page(total, search.per_page))
        ids = list(session.scalars(page_of(page)))
    rows = _in_order(session, ids)
    return SearchPage(rows, total, page, search.per_page, waitlist_positions(session, rows))


def _search_conditions(event: Event, search: RegistrationSearch) -> list:
    conditions = [Registration.event_id == event.id]
    words = search.text.strip().casefold()
    if words:
        conditions.append(Registration.search_text.contains(words, autoescape=True))
    if search.workshop_number is not None:
        conditions.append(
            Registration.workshop_id
            == select(Workshop.id)
            .where(Workshop.event_id == event.id, Workshop.number == search.workshop_number)
            .scalar_subquery()
        )
    if search.status is not None:
        conditions.append(Registration.status == search.status)
    if search.lunch is not None:
        conditions.append(Registration.lunch.is_(search.lunch))
    return conditions


def _last_page(total: int, per_page: int) -> int:
    return max(math.ceil(total / per_page), 1)


def _in_order(session: Session, ids: list[int]) -> list[Registration]:
    """The registrations with these ids, in this order, each with its workshop."""
    if not ids:
        return []
    by_id = {
        r.id: r
        for r in session.scalars(
            select(Registration)
            .where(Registration.id.in_(ids))
            .options(selectinload(Registration.workshop))
        )
    }
    return [by_id[registration_id] for registration_id in ids]


# Made once: building an alias copies every column, which cost more than the query itself.
_PERSON, _AHEAD = aliased(Registration, name="person"), aliased(Registration, name="ahead")


def waitlist_positions(session: Session, registrations: list[Registration]) -> dict[int, int]:
    """The waiting-list position of each waiting registration among these, in one query:
    people are served in the order they joined the list, then by id."""
    waiting_ids = [r.id for r in registrations if r.status is RegistrationStatus.WAITLISTED]
    if not waiting_ids:
        return {}
    person, ahead = _PERSON, _AHEAD
    rows = session.execute(
        select(person.id, func.count(ahead.id))
        .join(
            ahead,
            and_(
                ahead.workshop_id == person.workshop_id,
                ahead.status == RegistrationStatus.WAITLISTED,
                or_(
                    ahead.waitlisted_at < person.waitlisted_at,
                    and_(ahead.waitlisted_at == person.waitlisted_at, ahead.id <= person.id),
                ),
            ),
        )
        .where(person.id.in_(waiting_ids))
        .group_by(person.id)
    )
    return {registration_id: position for registration_id, position in rows}
