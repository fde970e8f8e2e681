"""The registrations page at 100 and at 10,000 registrations, side by side in one run.

    .venv/bin/python benchmarks/dashboard.py [--database-url URL] [--rounds 3] [--runs 10]

Fills the event with the given numbers of registrations (a bulk insert, the seat counters kept
equal to the confirmed rows), then times three requests of a logged-in admin through Flask's
test client: the first page in the default order, a search as typed (the htmx fragment), and a
page sorted by name and filtered by status and lunch. Rounds alternate the sizes; prints the
median (and the best) of each and the ratio of the largest size to the smallest. Target: 2× or
less; printed, never asserted.
A PostgreSQL database given with --database-url gets a benchmark event of its own, refilled on
each run.
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import tempfile
import time
from datetime import timedelta

from flask_migrate import upgrade
from sqlalchemy import delete, func, insert, select, text, update

from webapp import create_app
from webapp.accounts import create_user
from webapp.audit import SYSTEM
from webapp.config import Config, database_url
from webapp.database import utcnow
from webapp.event_file import load_event
from webapp.extensions import db
from webapp.models import (
    AuditEntry,
    Event,
    OutboxMessage,
    Registration,
    RegistrationStatus,
    Role,
    User,
    Workshop,
    search_text_of,
)

EVENT = "benchmark-dashboard"
ADMIN = "bench-admin@bench.test"
PASSWORD = "benchmark password 123"
WORKSHOPS = 4
FIRST_NAMES = ["Awa", "Marc", "Zoé", "Bruno", "Léa", "Karim", "Sofie", "Jan", "Inès", "Tom"]
LAST_NAMES = ["Diallo", "Lambert", "Martin", "Peeters", "Dubois", "Janssens", "El Amrani", "Maes"]
ORGANISATIONS = ["Ville de Namur", "CPAS de Liège", "ASBL Quartiers", "Université", None]
# Each request lists as many rows at both sizes (a full page, or the one person searched for),
# so that the ratio measures the queries' growth, not the rendering of more rows.
REQUESTS = {
    "first page": ("/admin/inscriptions", {}),
    "search (htmx)": ("/admin/inscriptions?q=vandenb", {"HX-Request": "true"}),
    "sorted + filtered": (
        "/admin/inscriptions?sort=name&order=desc&status=confirmed&lunch=yes",
        {},
    ),
}
# The person the search looks for, among everyone else.
SEARCHED = {"first_name": "Zénobie", "last_name": "Vandenberghe", "organisation": "Mundaneum"}


def benchmark_event(day) -> dict:
    return {
        "event": {
            "slug": EVENT,
            "title": "Journée de mesure du tableau de bord",
            "date": day.isoformat(),
            "starts": "09:00",
            "ends": "17:00",
            "venue": "Salle des fêtes",
            "address": "Place du Marché 1, 1000 Bruxelles",
            "contact_email": "orga@bench.test",
        },
        "workshops": [
            {"number": n, "title": f"Atelier {n}", "description": "…", "capacity": 1}
            for n in range(1, WORKSHOPS + 1)
        ],
    }


def fill(size: int) -> None:
    """Replaces the event's registrations with `size` new ones: about nine in ten seated, the
    rest waiting, a few cancelled, registered over the last thirty days."""
    event = db.session.scalar(select(Event).where(Event.slug == EVENT))
    ids = select(Registration.id).where(Registration.event_id == event.id)
    db.session.execute(delete(OutboxMessage).where(OutboxMessage.registration_id.in_(ids)))
    db.session.execute(delete(AuditEntry).where(AuditEntry.registration_id.in_(ids)))
    db.session.execute(delete(Registration).where(Registration.event_id == event.id))
    workshops = list(event.workshops)
    seats = max(size * 9 // 10 // WORKSHOPS, 1)
    db.session.execute(
        update(Workshop).where(Workshop.event_id == event.id).values(capacity=seats, seats_taken=0)
    )
    chance = random.Random(size)
    start = utcnow() - timedelta(days=30)
    seated = {w.id: 0 for w in workshops}
    rows = []
    for n in range(size):
        workshop = workshops[n % WORKSHOPS]
        created = start + timedelta(seconds=n * 30 * 86400 // size)
        if chance.random() < 0.03:
            status = RegistrationStatus.CANCELLED
        elif seated[workshop.id] < seats:
            status = RegistrationStatus.CONFIRMED
            seated[workshop.id] += 1
        else:
            status = RegistrationStatus.WAITLISTED
        person = (
            SEARCHED
            if n == size // 2
            else {
                "first_name": chance.choice(FIRST_NAMES),
                "last_name": chance.choice(LAST_NAMES),
                "organisation": chance.choice(ORGANISATIONS),
            }
        )
        email = f"{person['first_name']}.{person['last_name']}.{n}@bench.test".lower()
        email = email.replace(" ", "")
        rows.append(
            {
                "event_id": event.id,
                "workshop_id": workshop.id,
                **person,
                "email": email,
                "email_normalised": email,
                "status": status,
                "lunch": chance.random() < 0.7,
                "dietary": "Végétarien" if chance.random() < 0.1 else None,
                "language": "fr",
                "consent_at": created,
                "created_at": created,
                "waitlisted_at": created if status is RegistrationStatus.WAITLISTED else None,
                "cancelled_at": created if status is RegistrationStatus.CANCELLED else None,
                "manage_token": secrets.token_urlsafe(32),
                "checkin_code": secrets.token_urlsafe(16),
                # A bulk insert skips the model's listener that keeps it.
                "search_text": search_text_of(
                    person["first_name"], person["last_name"], email, person["organisation"]
                ),
            }
        )
    db.session.execute(insert(Registration), rows)
    for workshop_id, taken in seated.items():
        db.session.execute(
            update(Workshop).where(Workshop.id == workshop_id).values(seats_taken=taken)
        )
    db.session.commit()
    if db.session.get_bind().dialect.name == "postgresql":
        # What autovacuum does soon after a large insert: the planner's row counts.
        db.session.execute(text("ANALYZE registration"))
        db.session.commit()
    confirmed = db.session.scalar(
        select(func.count())
        .select_from(Registration)
        .where(
            Registration.event_id == event.id, Registration.status == RegistrationStatus.CONFIRMED
        )
    )
    assert confirmed == sum(seated.values())


def time_requests(client, runs: int, times: dict[str, list[float]]) -> None:
    """Adds the time of each request, in milliseconds, after one warm-up request."""
    for name, (path, headers) in REQUESTS.items():
        for run in range(runs + 1):
            started = time.perf_counter()
            response = client.get(path, headers=headers)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, (path, response.status_code)
            if run:
                times[name].append(elapsed * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10, help="requests per round")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    arguments = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="atelier-bench-")
    url = database_url(arguments.database_url or f"sqlite:///{workdir}/bench.sqlite")
    app = create_app(
        Config,
        {
            "SECRET_KEY": "benchmark",
            "SQLALCHEMY_DATABASE_URI": url,
            "EVENT_SLUG": EVENT,
            "WTF_CSRF_ENABLED": False,
            "SESSION_COOKIE_SECURE": False,
            "RATELIMIT_ENABLED": False,
        },
    )
    with app.app_context():
        upgrade()
        if db.session.scalar(select(Event.id).where(Event.slug == EVENT)) is None:
            load_event(db.session, benchmark_event(utcnow().date() + timedelta(days=30)))
        if db.session.scalar(select(User.id).where(User.email == ADMIN)) is None:
            create_user(db.session, SYSTEM, ADMIN, PASSWORD, Role.ADMIN)
        db.session.commit()
    client = app.test_client()
    login = client.post("/admin/login", data={"email": ADMIN, "password": PASSWORD})
    assert login.status_code == 303, login.status_code

    # Rounds alternate the sizes, so that a passing load on the (shared) machine hits both.
    times = {size: {name: [] for name in REQUESTS} for size in arguments.sizes}
    for _round in range(arguments.rounds):
        for size in arguments.sizes:
            with app.app_context():
                fill(size)
                db.session.remove()
            time_requests(client, arguments.runs, times[size])

    smallest, largest = min(arguments.sizes), max(arguments.sizes)
    measured = arguments.rounds * arguments.runs
    print(f"database: {url.split(':', 1)[0]}; median (best) of {measured} requests each")
    sizes = "".join(f"{size:>19,} rows" for size in arguments.sizes)
    print(f"{'request':<20}{sizes}   ratio (best)")
    for name in REQUESTS:
        medians = {size: statistics.median(times[size][name]) for size in arguments.sizes}
        bests = {size: min(times[size][name]) for size in arguments.sizes}
        figures = "".join(
            f"{medians[size]:>9.1f} ms ({bests[size]:5.1f})" for size in arguments.sizes
        )
        ratio = medians[largest] / medians[smallest]
        best_ratio = bests[largest] / bests[smallest]
        print(f"{name:<20}{figures}   {ratio:4.2f}× ({best_ratio:4.2f}×)")
    print(f"target: the {largest:,} figure within 2× of the {smallest:,} one")


if __name__ == "__main__":
    main()
