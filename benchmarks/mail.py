"""Mail throughput: the outbox worker against a plain smtplib loop, side by side in one run.

    .venv/bin/python benchmarks/mail.py [--messages 1000] [--rounds 5] [--database-url URL]

Both send the same stored messages, built into the same MIME message with its check-in QR code,
to an aiosmtpd server in a process of its own (so that its work is not counted on either side).
The plain loop is what a simple script would do: one query, build the messages, send them on one
connection, with no bookkeeping. The worker does its real job: it claims each batch of
MAIL_BATCH_SIZE with a lease, sends it on one connection and records every outcome.
Target: the worker at 0.9 or more of the plain loop's rate.
"""

from __future__ import annotations

import argparse
import multiprocessing
import smtplib
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta

from aiosmtpd.controller import Controller
from flask_migrate import upgrade
from sqlalchemy import func, select, update

from webapp import create_app
from webapp.checkin import QR_CODE_SOURCE, checkin_url
from webapp.config import Config, database_url
from webapp.database import utcnow
from webapp.event_file import load_event
from webapp.extensions import db
from webapp.mail_delivery import build_message
from webapp.mail_job import send_due
from webapp.models import OutboxMessage, OutboxState, Registration
from webapp.registration import Applicant, register


class Counter:
    def __init__(self, received):
        self.received = received

    async def handle_DATA(self, _server, _session, _envelope):
        with self.received.get_lock():
            self.received.value += 1
        return "250 OK"


def serve_smtp(port: int, received, ready) -> None:
    controller = Controller(Counter(received), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    threading.Event().wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def benchmark_event(day, seats):
    return {
        "event": {
            "slug": "benchmark",
            "title": "Journée de mesure",
            "date": day.isoformat(),
            "starts": "09:00",
            "ends": "17:00",
            "venue": "Salle des fêtes",
            "address": "Place du Marché 1, 1000 Bruxelles",
            "contact_email": "orga@bench.test",
        },
        "workshops": [{"number": 1, "title": "Atelier", "description": "…", "capacity": seats}],
    }


def queue_messages(number: int) -> None:
    """Registers `number` people through the real registration path: one e-mail each, a
    confirmation with its QR code, like most of what the worker sends (and reminders)."""
    day = utcnow().date() + timedelta(days=30)
    event = load_event(db.session, benchmark_event(day, seats=number)).event
    for i in range(number):
        applicant = Applicant(
            first_name="Participant",
            last_name=str(i),
            email=f"p{i}@bench.test",
            organisation=None,
            workshop_number=1,
            lunch=True,
            dietary=None,
            language="fr",
        )
        register(db.session, event, applicant)


def plain_loop(app, port: int) -> None:
    """Reads the messages and their check-in codes in one query, builds them as the worker does,
    then sends them on one connection. Building them all first (as the worker does per batch)
    measured about 10% faster than building each just before sending it."""
    with app.app_context():
        rows = db.session.execute(
            select(OutboxMessage, Registration.checkin_code).outerjoin(
                Registration, OutboxMessage.registration_id == Registration.id
            )
        )
        mails = [
            build_message(
                message, checkin_url(code) if QR_CODE_SOURCE in message.body_html else None
            )
            for message, code in rows
        ]
        with smtplib.SMTP("127.0.0.1", port) as connection:
            for mail in mails:
                connection.sendmail(mail.sender, mail.recipients, mail.as_bytes())
        db.session.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    arguments = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="atelier-bench-")
    url = database_url(arguments.database_url or f"sqlite:///{workdir}/bench.sqlite")
    port = free_port()
    received, ready = multiprocessing.Value("i", 0), multiprocessing.Event()
    smtp = multiprocessing.Process(target=serve_smtp, args=(port, received, ready), daemon=True)
    smtp.start()
    ready.wait()
    app = create_app(
        Config,
        {
            "SECRET_KEY": "benchmark",
            "SQLALCHEMY_DATABASE_URI": url,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": port,
        },
    )
    try:
        with app.app_context():
            upgrade()
            if db.session.scalar(select(func.count()).select_from(OutboxMessage)):
                sys.exit(f"{url} already has messages: give an empty database")
            queue_messages(arguments.messages)
            db.session.commit()
            db.session.remove()

        sides = {"worker": lambda: send_due(app), "plain loop": lambda: plain_loop(app, port)}
        times = {side: [] for side in sides}
        cpu_times = {side: [] for side in sides}
        for round_number in range(arguments.rounds):
            # Each round runs both sides back to back, in turns first, so that a passing load on
            # the machine hits both alike; the ratio is the median of the rounds' ratios.
            order = list(sides) if round_number % 2 == 0 else list(reversed(sides))
            for side in order:
                requeue_all(app)
                received.value = 0
                started, cpu_started = time.perf_counter(), time.process_time()
                sides[side]()
                times[side].append(time.perf_counter() - started)
                cpu_times[side].append(time.process_time() - cpu_started)
                if received.value != arguments.messages:
                    sys.exit(f"{side}: {received.value} of {arguments.messages} messages sent")
    finally:
        smtp.terminate()

    backend = url.split(":", 1)[0]
    print(
        f"database: {backend}, messages: {arguments.messages}, rounds: {arguments.rounds}, "
        f"MAIL_BATCH_SIZE: {app.config['MAIL_BATCH_SIZE']}"
    )
    for side, seconds in times.items():
        rate = arguments.messages / statistics.median(seconds)
        cpu = statistics.median(cpu_times[side]) / arguments.messages * 1000
        print(
            f"{side + ':':11} {rate:7.1f} messages/s, {cpu:.2f} ms of CPU each "
            f"(median of {format_times(seconds)})"
        )
    print(f"ratio worker/plain: {median_ratio(times)} (target >= 0.90)")
    # On a busy machine the wall clock wavers; the CPU time of this process (SQLite included,
    # not a PostgreSQL server's work) shows the worker's own cost steadily.
    print(f"CPU ratio:          {median_ratio(cpu_times)}")


def median_ratio(times: dict[str, list[float]]) -> str:
    ratios = [
        plain / worker for worker, plain in zip(times["worker"], times["plain loop"], strict=True)
    ]
    rounds = ", ".join(f"{ratio:.2f}" for ratio in ratios)
    return f"{statistics.median(ratios):.2f} (rounds: {rounds})"


def format_times(times: list[float]) -> str:
    return ", ".join(f"{seconds:.2f} s" for seconds in times)


def requeue_all(app) -> None:
    with app.app_context():
        db.session.execute(
            update(OutboxMessage).values(state=OutboxState.QUEUED, next_attempt_at=utcnow())
        )
        db.session.commit()
        db.session.remove()


if __name__ == "__main__":
    main()
