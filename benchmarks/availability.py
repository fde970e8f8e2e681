"""The live seats (`/places`) and the programme page against constant views of their size.

    .venv/bin/python benchmarks/availability.py [--engines sqlite,postgresql]
        [--connections 50,200] [--turns 5] [--seconds 3] [--workers 2]
        [--postgres-url postgresql://postgres@127.0.0.1/postgres]

For each database, it creates an empty one, loads a made-up event of eight workshops (some full,
with waiting lists), serves the app with gunicorn as the README deploys it (sync workers), and
beside it, under the same gunicorn, a Flask view that returns a copy of the measured page
(benchmarks/baseline_app.py). wrk drives both in short turns at each number of connections, and
the script prints each side's median turn (req/s, p50, p99, errors) and the ratio. Targets:
`/places` ≥ 0.8 × its constant view, a 304 (`If-None-Match`) ≥ 0.9 ×, the programme page ≥ 0.5 ×
its constant view, no errors.
Needs `wrk` (Debian package).
"""

from __future__ import annotations

import argparse
import html
import re
import tempfile
import urllib.request
from datetime import timedelta
from pathlib import Path

from flask_migrate import upgrade
from serving import ROOT, WrkRun, gunicorn, require_wrk, scratch_database, wrk

from webapp import create_app
from webapp.config import Config, database_url
from webapp.database import utcnow
from webapp.event_file import load_event
from webapp.extensions import db
from webapp.registration import Applicant, register

POLL_SECONDS = 5
P99_BUDGET_MS = 100


def benchmark_event(day) -> dict:
    return {
        "event": {
            "slug": "mesure-des-places",
            "title": "Rencontres de l'économie sociale",
            "date": day.isoformat(),
            "starts": "09:00",
            "ends": "17:00",
            "venue": "Maison des associations",
            "address": "Rue de la Loi 1, 1000 Bruxelles",
            "contact_email": "orga@bench.test",
        },
        "workshops": [
            {
                "number": number,
                "title": f"Atelier {number} : gouvernance partagée ?",
                "description": "Un échange de pratiques entre associations. " * 12,
                "capacity": 12 + 3 * number,
            }
            for number in range(1, 9)
        ],
    }


def fill(app) -> None:
    """Workshop 1 full with a waiting list, the others more or less taken."""
    with app.app_context():
        day = utcnow().date() + timedelta(days=30)
        event = load_event(db.session, benchmark_event(day)).event
        for number, wanted in enumerate((20, 14, 3, 0, 17, 9, 25, 1), start=1):
            for i in range(wanted):
                applicant = Applicant(
                    first_name="Personne",
                    last_name=f"{number}-{i}",
                    email=f"p{number}-{i}@bench.test",
                    organisation=None,
                    workshop_number=number,
                    lunch=i % 2 == 0,
                    dietary=None,
                    language="fr",
                )
                register(db.session, event, applicant)
        db.session.commit()
        db.session.remove()


def prepare(url: str) -> None:
    app = create_app(Config, {"SECRET_KEY": "benchmark", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
    fill(app)


def fetch(url: str) -> tuple[bytes, str | None]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read(), response.headers.get("ETag")


def measure(engine: str, arguments) -> list[tuple]:
    rows = []
    with scratch_database(engine, arguments.postgres_url) as raw_url:
        url = database_url(raw_url)
        prepare(url)
        environment = {
            "ATELIER_ENV": "production",
            "SECRET_KEY": "benchmark",
            "PUBLIC_URL": "https://bench.example.org",
            "DATABASE_URL": url,
        }
        with gunicorn("wsgi:app", environment, arguments.workers) as site:
            page, _ = fetch(site + "/")
            # The seats' URL as the page polls it.
            poll = html.unescape(re.search(rb'hx-get="(/places[^"]*)"', page).group(1).decode())
            places, etag = fetch(site + poll)
            with tempfile.TemporaryDirectory() as bodies:
                (Path(bodies) / "places").write_bytes(places)
                (Path(bodies) / "programme").write_bytes(page)
                with gunicorn(
                    "baseline_app:app",
                    {"BASELINE_BODIES": bodies},
                    arguments.workers,
                    chdir=ROOT / "benchmarks",
                ) as baseline:
                    pairs = [
                        (
                            f"/places ({len(places)} B)",
                            site + poll,
                            {},
                            baseline + "/constant/places",
                        ),
                        (
                            "/places, 304",
                            site + poll,
                            {"If-None-Match": etag},
                            baseline + "/constant/places",
                        ),
                        (f"/ ({len(page)} B)", site + "/", {}, baseline + "/constant/programme"),
                    ]
                    for _name, target, headers, constant in pairs:  # warm both up, unmeasured
                        wrk(target, 10, 1, headers)
                        wrk(constant, 10, 1)
                    for connections in arguments.connections:
                        for name, target, headers, constant in pairs:
                            # Short turns, one side then the other: a passing load on the
                            # machine hits both alike. The median turn of each side counts.
                            measured, yardstick = [], []
                            for _turn in range(arguments.turns):
                                measured.append(
                                    wrk(target, connections, arguments.seconds, headers)
                                )
                                yardstick.append(wrk(constant, connections, arguments.seconds))
                            rows.append(
                                (
                                    engine,
                                    connections,
                                    name,
                                    median_run(measured),
                                    median_run(yardstick),
                                )
                            )
    return rows


def median_run(runs: list[WrkRun]) -> WrkRun:
    return sorted(runs, key=lambda run: run.requests_per_second)[len(runs) // 2]


TARGETS = {"/places": 0.8, "/places, 304": 0.9, "/": 0.5}


def target_of(name: str) -> float:
    return TARGETS[name if name in TARGETS else name.split(" (")[0]]


def report(rows: list[tuple]) -> None:
    header = (
        f"{'database':<11}{'conn':>5}  {'path':<22}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'errors':>7}  {'constant req/s':>14}{'p99 ms':>8}  {'ratio':>6}  target"
    )
    print(header)
    print("-" * len(header))
    for engine, connections, name, measured, yardstick in rows:
        ratio = measured.requests_per_second / yardstick.requests_per_second
        target = target_of(name)
        verdict = "met" if ratio >= target and measured.errors == 0 else "NOT met"
        print(
            f"{engine:<11}{connections:>5}  {name:<22}{measured.requests_per_second:>8.0f}"
            f"{measured.p50_ms:>8.1f}{measured.p99_ms:>8.1f}{measured.errors:>7}  "
            f"{yardstick.requests_per_second:>14.0f}{yardstick.p99_ms:>8.1f}  "
            f"{ratio:>6.2f}  ≥ {target} {verdict}"
        )
    print()
    for engine in dict.fromkeys(row[0] for row in rows):
        polls = [
            row[3]
            for row in rows
            if row[0] == engine and row[2].startswith("/places (") and row[3].p99_ms < P99_BUDGET_MS
        ]
        if polls:
            best = max(run.requests_per_second for run in polls)
            print(
                f"{engine}: about {best * POLL_SECONDS:,.0f} viewers polling every "
                f"{POLL_SECONDS} s served at p99 < {P99_BUDGET_MS} ms ({best:,.0f} polls/s)"
            )
        else:
            print(f"{engine}: p99 of /places above {P99_BUDGET_MS} ms at every load measured")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--connections", default="50,200")
    parser.add_argument("--seconds", type=int, default=3, help="per turn")
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    arguments = parser.parse_args()
    require_wrk()
    arguments.connections = [int(n) for n in arguments.connections.split(",")]
    rows = []
    for engine in arguments.engines.split(","):
        rows += measure(engine, arguments)
    report(rows)


if __name__ == "__main__":
    main()
