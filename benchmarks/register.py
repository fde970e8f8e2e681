"""Registration throughput over HTTP against a view doing one INSERT + COMMIT, side by side.

    .venv/bin/python benchmarks/register.py [--registrations 640] [--rounds 3]
        [--only postgresql|sqlite] [--database-url postgresql://…/EMPTY_DB]

Each side is served by gunicorn as the README recommends, with the same 2 sync workers, and
driven by `wrk` (Debian package) with 50 connections through benchmarks/register.lua: every
request posts the form with a new address, the CSRF token and session cookie taken once from the
programme page. The yardstick is `POST /insert` of benchmarks/baseline_app.py, on the same
database. The app runs with REGISTRATION_RATE_LIMIT raised (all requests come from one client).
Each round gets a fresh event whose workshops hold half of the registrations, so that the other
half ends on waiting lists; after it, the database is checked: seats never above capacity, seat
counters equal to the seated rows, nobody waiting while a seat is free, exactly one
confirmation or waiting-list mail queued and one audit entry per registration.

PostgreSQL: a database created on --postgres-server and dropped at the end, or the one given
with --database-url (its benchmark events are left there). SQLite: a temporary file.
Prints req/s of both sides (median of the rounds), their ratio, p50/p99 latency and the
responses that were not redirects. Target: registration at 0.5 or more of the one-insert view.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from flask_migrate import upgrade
from serving import ROOT, gunicorn, require_wrk, scratch_database
from sqlalchemy import select

from webapp import create_app
from webapp.audit import AuditAction
from webapp.config import Config, database_url
from webapp.database import utcnow
from webapp.event_file import load_event
from webapp.extensions import db
from webapp.models import (
    AuditEntry,
    Event,
    MailKind,
    OutboxMessage,
    Registration,
    RegistrationStatus,
    Workshop,
)

WORKERS = 2
# Where the links in the queued mails lead; nothing follows them here.
PUBLIC_URL = "http://atelier.example.org"
# One wrk thread (plenty for a few hundred requests a second): a wrk thread that has had its
# share stops, but its connections stay open until wrk exits, and a sync worker of gunicorn 27
# lingers up to 2 s on each before closing it, stalling the threads still running.
WRK_THREADS = 1
WARM_UP_PER_THREAD = 20
MAIL_OF_STATUS = {
    RegistrationStatus.CONFIRMED: MailKind.CONFIRMATION,
    RegistrationStatus.WAITLISTED: MailKind.WAITLISTED,
}
CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def benchmark_event(slug: str, workshops: int, seats: int) -> dict:
    day = utcnow().date() + timedelta(days=30)
    return {
        "event": {
            "slug": slug,
            "title": "Journée de mesure des inscriptions",
            "date": day.isoformat(),
            "starts": "09:00",
            "ends": "17:00",
            "venue": "Salle des fêtes",
            "address": "Place du Marché 1, 1000 Bruxelles",
            "contact_email": "orga@example.org",
        },
        "programme": [
            {"starts": "09:00", "title": "Accueil", "kind": "plenary"},
            {"starts": "10:00", "title": "Ateliers", "kind": "workshops"},
        ],
        "workshops": [
            {"number": n, "title": f"Atelier {n}", "description": "…", "capacity": seats}
            for n in range(1, workshops + 1)
        ],
    }


@dataclass(frozen=True)
class Run:
    responses: int
    seconds: float
    p50_ms: float
    p99_ms: float
    not_3xx: int
    socket_errors: int

    @property
    def rate(self) -> float:
        return self.responses / self.seconds


def drive(
    url: str,
    path: str,
    token: str,
    cookie: str,
    prefix: str,
    per_thread: int,
    connections: int,
    workshops: int,
) -> Run:
    """Runs wrk until each of its threads has had `per_thread` responses, then stops it."""
    command = [
        "wrk", f"-t{WRK_THREADS}", f"-c{connections}", "-d600s", "--timeout", "60s",
        "-s", str(ROOT / "benchmarks" / "register.lua"), url, "--",
        path, token, cookie, prefix, str(per_thread), str(workshops),
    ]  # fmt: skip
    wrk = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    stopped, output = 0, []
    for line in wrk.stdout:
        output.append(line)
        if line.strip() == "stopped":
            stopped += 1
            if stopped == WRK_THREADS:
                # wrk waits out its whole -d duration otherwise.
                wrk.send_signal(signal.SIGINT)
    wrk.wait()
    result = next((line for line in output if line.startswith("RESULT ")), None)
    if result is None:
        sys.exit("wrk gave no result:\n" + "".join(output))
    return Run(**json.loads(result.removeprefix("RESULT ")))


def token_and_cookie(url: str) -> tuple[str, str]:
    """The programme page's CSRF token and the session cookie that goes with it."""
    with urllib.request.urlopen(url + "/") as response:
        page = response.read().decode()
        cookie = response.headers["Set-Cookie"].split(";", 1)[0]
    return CSRF_INPUT.search(page).group(1), cookie


def measure(url, path, token, cookie, prefix, arguments) -> Run:
    """A short warm-up with few connections (each worker compiles its templates), then the
    measured run."""
    drive(url, path, token, cookie, f"{prefix}-warm", WARM_UP_PER_THREAD, 4, arguments.workshops)
    per_thread = -(-arguments.registrations // WRK_THREADS)
    return drive(
        url, path, token, cookie, prefix, per_thread, arguments.connections, arguments.workshops
    )


def one_insert_round(url: str, arguments, prefix: str) -> Run:
    environment = {"BASELINE_DATABASE_URL": url}
    with gunicorn(
        "baseline_app:app", environment, WORKERS, ROOT / "benchmarks", "--preload"
    ) as site:
        return measure(site, "/insert", "-", "-=-", prefix, arguments)


def registration_round(app, url: str, arguments, slug: str) -> tuple[Run, str]:
    seats = arguments.registrations // (2 * arguments.workshops)
    with app.app_context():
        load_event(db.session, benchmark_event(slug, arguments.workshops, seats))
        db.session.commit()
        db.session.remove()
    environment = {
        "ATELIER_ENV": "production",
        "SECRET_KEY": "benchmark",
        "PUBLIC_URL": PUBLIC_URL,
        "DATABASE_URL": url,
        "EVENT_SLUG": slug,
        "REGISTRATION_RATE_LIMIT": "1000000 per minute",
    }
    with gunicorn("wsgi:app", environment, WORKERS) as site:
        token, cookie = token_and_cookie(site)
        run = measure(site, "/inscription", token, cookie, slug, arguments)
    with app.app_context():
        verdict = check_consistency(slug)
        db.session.remove()
    return run, verdict


def check_consistency(slug: str) -> str:
    """What the database holds after the run, or the problems found (then the script fails)."""
    event = db.session.scalar(select(Event).where(Event.slug == slug))
    problems = []
    statuses = dict(
        db.session.execute(
            select(Registration.id, Registration.status).where(Registration.event_id == event.id)
        ).all()
    )
    by_workshop = Counter(
        db.session.execute(
            select(Registration.workshop_id, Registration.status).where(
                Registration.event_id == event.id
            )
        ).all()
    )
    for workshop in db.session.scalars(select(Workshop).where(Workshop.event_id == event.id)):
        seated = by_workshop[workshop.id, RegistrationStatus.CONFIRMED]
        waiting = by_workshop[workshop.id, RegistrationStatus.WAITLISTED]
        if workshop.seats_taken > workshop.capacity:
            problems.append(f"workshop {workshop.number}: {workshop.seats_taken} seats taken")
        if workshop.seats_taken != seated:
            problems.append(
                f"workshop {workshop.number}: counter {workshop.seats_taken}, {seated} seated"
            )
        if waiting and workshop.seats_taken < workshop.capacity:
            problems.append(f"workshop {workshop.number}: {waiting} waiting beside a free seat")
    mails = Counter(
        db.session.execute(
            select(OutboxMessage.registration_id, OutboxMessage.kind).where(
                OutboxMessage.registration_id.in_(statuses)
            )
        ).all()
    )
    audited = Counter(
        db.session.scalars(
            select(AuditEntry.registration_id).where(
                AuditEntry.action == AuditAction.REGISTRATION_CREATED,
                AuditEntry.event_id == event.id,
            )
        )
    )
    for registration_id, status in statuses.items():
        expected = {(registration_id, MAIL_OF_STATUS.get(status)): 1}
        queued = {key: n for key, n in mails.items() if key[0] == registration_id}
        if queued != expected:
            problems.append(f"registration {registration_id} ({status}): mails {queued}")
        if audited[registration_id] != 1:
            problems.append(f"registration {registration_id}: {audited[registration_id]} audit")
    if problems:
        return "INCONSISTENT: " + "; ".join(problems[:10])
    status_counts = Counter(statuses.values())
    return (
        f"{len(statuses)} registrations ({status_counts[RegistrationStatus.CONFIRMED]} seated, "
        f"{status_counts[RegistrationStatus.WAITLISTED]} waiting): consistent"
    )


def benchmark(url: str, arguments) -> bool:
    """Runs the rounds on one database, prints its figures; False if a check failed."""
    app = create_app(
        Config,
        {"SECRET_KEY": "benchmark", "SQLALCHEMY_DATABASE_URI": url, "PUBLIC_URL": PUBLIC_URL},
    )
    with app.app_context():
        upgrade()
        db.session.remove()
    insert_runs, registration_runs, verdicts = [], [], []
    run_id = uuid.uuid4().hex[:8]
    for number in range(arguments.rounds):
        # Alternating which side goes first, so that a passing load hits both alike.
        for side in ("insert", "register")[:: 1 if number % 2 == 0 else -1]:
            if side == "insert":
                prefix = f"insert-{run_id}-{number}"
                insert_runs.append(one_insert_round(url, arguments, prefix))
            else:
                slug = f"bench-register-{run_id}-{number}"
                run, verdict = registration_round(app, url, arguments, slug)
                registration_runs.append(run)
                verdicts.append(verdict)
    with app.app_context():
        db.engine.dispose()

    seats = arguments.registrations // (2 * arguments.workshops)
    print(
        f"\n{url.split(':', 1)[0]}: {arguments.registrations}+ registrations per round "
        f"({arguments.workshops} workshops × {seats} seats), {arguments.connections} "
        f"connections, gunicorn --workers {WORKERS}, {arguments.rounds} rounds"
    )
    print(f"{'':<22}{'req/s':>7}  {'(each round)':<24}{'p50':>9}{'p99':>9}{'non-3xx':>9}"
          f"{'socket errors':>15}")  # fmt: skip
    for name, runs in (("one INSERT + COMMIT", insert_runs), ("registration", registration_runs)):
        rounds = ", ".join(f"{run.rate:.0f}" for run in runs)
        print(
            f"{name:<22}{median_rate(runs):7.1f}  ({rounds}){'':<{22 - len(rounds)}}"
            f"{statistics.median(r.p50_ms for r in runs):6.0f} ms"
            f"{statistics.median(r.p99_ms for r in runs):6.0f} ms"
            f"{sum(r.not_3xx for r in runs):9}{sum(r.socket_errors for r in runs):15}"
        )
    ratio = median_rate(registration_runs) / median_rate(insert_runs)
    print(f"ratio registration / one insert: {ratio:.2f} (target >= 0.50)")
    for number, verdict in enumerate(verdicts, start=1):
        print(f"after round {number}: {verdict}")
    return not any(v.startswith("INCONSISTENT") for v in verdicts)


def median_rate(runs: list[Run]) -> float:
    return statistics.median(run.rate for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, default=640, help="per round")
    parser.add_argument("--workshops", type=int, default=4)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["postgresql", "sqlite"])
    parser.add_argument("--database-url", help="an empty PostgreSQL database to use")
    parser.add_argument(
        "--postgres-server",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="where to create (and drop) a fresh database when --database-url is not given",
    )
    arguments = parser.parse_args()
    require_wrk()

    consistent = True
    if arguments.only != "sqlite":
        if arguments.database_url:
            consistent &= benchmark(database_url(arguments.database_url), arguments)
        else:
            with scratch_database("postgresql", arguments.postgres_server) as url:
                consistent &= benchmark(database_url(url), arguments)
    if arguments.only != "postgresql":
        with scratch_database("sqlite") as url:
            consistent &= benchmark(url, arguments)
    if not consistent:
        sys.exit("a consistency check failed")


if __name__ == "__main__":
    main()
