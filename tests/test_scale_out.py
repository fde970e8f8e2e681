"""Several servers, one PostgreSQL: two gunicorns and two mail workers share the seats, the
outbox and, through Redis, the rate limit."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
import tomli_w
from conftest import (
    SMTPServer,
    event_data,
    free_port,
    fresh_postgres_database,
    missing,
    registration_form,
)

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
SLUG = "montee-en-charge"
CAPACITY = 20
# The workshop that the 80 leave with free seats, where the other tests register.
QUIET = 3
# The workshop chosen by each of the 80: more than 20 want 1 and 2, so waiting lists form.
DEMAND = [1] * 40 + [2] * 25 + [QUIET] * 15
# Seconds a server may show seat counts older than the database (AVAILABILITY_MAX_AGE_SECONDS).
AVAILABILITY_MAX_AGE = 1
REGISTRATIONS_PER_ADDRESS = 3


@dataclass
class Cluster:
    servers: list[str]  # base URLs
    database: str  # for psycopg
    smtp: SMTPServer
    mail_workers: list[subprocess.Popen]

    def query(self, sql: str, *params) -> list[tuple]:
        with psycopg.connect(self.database) as connection:
            return connection.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two gunicorns and two mail workers on a fresh database, rate limits in Redis."""
    require_redis()
    logs = tmp_path_factory.mktemp("scale-out")
    with ExitStack() as stack:
        database = stack.enter_context(fresh_postgres_database("atelier_scale"))
        smtp = SMTPServer()
        smtp.start()
        stack.callback(smtp.stop)
        env = settings(database, smtp.port)
        flask(env, "db", "upgrade")
        event_file = logs / "event.toml"
        event_file.write_text(tomli_w.dumps(scale_out_event()))
        flask(env, "event", "load", str(event_file))

        servers = []
        for name in ("server-a", "server-b"):
            port = free_port()
            gunicorn = ["gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"]
            process = start(stack, logs / f"{name}.log", env, gunicorn)
            servers.append((f"http://127.0.0.1:{port}", process, logs / f"{name}.log"))
        workers = [
            start(
                stack,
                logs / f"mail-worker-{n}.log",
                env,
                ["flask", "--app", "wsgi", "mail", "worker"],
            )
            for n in (1, 2)
        ]
        for url, process, log in servers:
            wait_until_healthy(url, process, log)
        yield Cluster([url for url, _, _ in servers], database, smtp, workers)


def require_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        missing(f"Redis is not reachable at {REDIS_URL}: {error}")


def settings(database: str, smtp_port: int) -> dict[str, str]:
    """The whole environment of every process: nothing inherited from the developer's."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "ATELIER_ENV": "production",
        "DATABASE_URL": database,
        # Shared, as on real servers: a form served by one may be posted to the other.
        "SECRET_KEY": "scale-out-test-secret",
        "PUBLIC_URL": "http://atelier.test",
        "EVENT_SLUG": SLUG,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_port),
        "MAIL_TIMEOUT_SECONDS": "5",
        "MAIL_SEND_INTERVAL_SECONDS": "1",
        # Small batches, so that both workers take part in draining the outbox.
        "MAIL_BATCH_SIZE": "5",
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        # This run's counters only (they expire with the limit's window).
        "RATELIMIT_KEY_PREFIX": f"atelier-scale-out-{uuid.uuid4().hex}",
        "REGISTRATION_RATE_LIMIT": f"{REGISTRATIONS_PER_ADDRESS} per minute",
        "AVAILABILITY_MAX_AGE_SECONDS": str(AVAILABILITY_MAX_AGE),
        # Each simulated person comes from the address in its X-Forwarded-For header.
        "PROXY_COUNT": "1",
    }


def scale_out_event() -> dict:
    workshops = [
        {"number": n, "title": f"Atelier {n}", "description": "En parallèle.", "capacity": CAPACITY}
        for n in (1, 2, 3)
    ]
    return event_data(event__slug=SLUG, workshops=workshops)


def flask(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"flask {' '.join(args)}:\n{result.stdout}{result.stderr}"


def start(stack: ExitStack, log: Path, env: dict[str, str], command: list[str]) -> subprocess.Popen:
    """Runs `python -m COMMAND…` from the repository root, in a process group of its own that
    the stack stops, whatever happens in between."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack.callback(stop, process)
    return process


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the whole group (gunicorn's workers too), then SIGKILL to whatever lingers."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} stopped at start:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:  # not listening yet, or its workers still booting
            pass
        time.sleep(0.1)
    pytest.fail(f"{url}/healthz did not answer within 60 s:\n{log.read_text()[-3000:]}")


class Participant:
    """One person's browser: its own cookies, its own address (behind the trusted proxy)."""

    def __init__(self, address: str):
        self.address = address
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def request(self, url: str, form: dict | None = None, **headers) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(
            url, data=data, headers={"X-Forwarded-For": self.address, **headers}
        )
        try:
            with self.opener.open(request, timeout=60) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def open_form(self, server: str) -> dict:
        """The programme page: its CSRF token, bound to this person's session cookie."""
        status, page = self.request(f"{server}/")
        assert status == 200, page
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        return {"csrf_token": token}

    def submit(self, server: str, form: dict, **fields) -> tuple[int, str]:
        """Posts the registration form as htmx does (the answer is the confirmation panel)."""
        return self.request(
            f"{server}/inscription",
            {**form, **registration_form(**fields)},
            **{"HX-Request": "true"},
        )

    def register(self, server: str, **fields) -> tuple[int, str]:
        return self.submit(server, self.open_form(server), **fields)


def seats_shown(server: str) -> dict[int, int]:
    """Seats taken per workshop, as the programme page's poller receives them."""
    status, body = Participant("192.0.2.1").request(f"{server}/places", **{"HX-Request": "true"})
    assert status == 200, body
    meters = re.findall(r'id="seats-(\d+)"[^>]*>\s*<meter [^>]*value="(\d+)"', body)
    return {int(number): int(taken) for number, taken in meters}


@pytest.fixture(scope="module")
def crowd(cluster) -> list[tuple[int, str]]:
    """The 80 registering at the same moment, spread over both servers: their answers."""
    start = threading.Barrier(len(DEMAND))

    def register(i: int) -> tuple[int, str]:
        person = Participant(f"10.0.0.{i + 1}")
        # Half of them post to the server that did not serve their form, as behind a load
        # balancer without sticky sessions.
        form = person.open_form(cluster.servers[i % 2])
        start.wait()
        return person.submit(
            cluster.servers[(i // 2) % 2],
            form,
            first_name=f"Personne{i}",
            email=f"person{i}@example.org",
            workshop=str(DEMAND[i]),
        )

    with ThreadPoolExecutor(max_workers=len(DEMAND)) as pool:
        return list(pool.map(register, range(len(DEMAND))))


def test_eighty_people_registering_at_once_on_two_servers_never_overbook(cluster, crowd):
    refused = [(status, body[:500]) for status, body in crowd if status != 200]
    assert refused == [], f"{len(refused)} of {len(DEMAND)} registrations refused"
    statuses = dict(cluster.query("SELECT email, status FROM registration"))
    ours = Counter(statuses[f"person{i}@example.org"] for i in range(len(DEMAND)))
    assert ours == {"confirmed": 55, "waitlisted": 25}
    for number, capacity, taken, confirmed, waiting in cluster.query(
        "SELECT w.number, w.capacity, w.seats_taken, "
        "count(*) FILTER (WHERE r.status = 'confirmed'), "
        "count(*) FILTER (WHERE r.status = 'waitlisted') "
        "FROM workshop w LEFT JOIN registration r ON r.workshop_id = w.id "
        "GROUP BY w.id ORDER BY w.number"
    ):
        assert taken <= capacity, f"workshop {number} overbooked"
        assert taken == confirmed, f"workshop {number}: counter and rows disagree"
        assert not waiting or taken == capacity, f"workshop {number}: waiting beside free seats"


def test_every_registration_gets_exactly_one_mail_from_two_workers(cluster, crowd):
    wait_for_outbox_to_drain(cluster)
    registrations = [email for (email,) in cluster.query("SELECT email FROM registration")]

    assert cluster.query("SELECT count(*) FROM outbox_message WHERE state = 'failed'") == [(0,)]
    received = list(cluster.smtp.messages)
    message_ids = Counter(message["Message-ID"] for message in received)
    assert [m for m, n in message_ids.items() if n > 1] == [], "a message was sent twice"
    per_recipient = Counter(message["To"] for message in received)
    assert {email: per_recipient[email] for email in registrations} == dict.fromkeys(
        registrations, 1
    )
    assert [worker.poll() for worker in cluster.mail_workers] == [None, None]


def wait_for_outbox_to_drain(cluster: Cluster) -> None:
    """A deadline for a stuck outbox, not a measure of speed."""
    deadline = time.monotonic() + 120
    while cluster.query(
        "SELECT count(*) FROM outbox_message WHERE state IN ('queued', 'sending')"
    ) != [(0,)]:
        assert time.monotonic() < deadline, "the mail workers left messages in the outbox"
        time.sleep(0.2)


def test_a_seat_taken_through_one_server_shows_on_the_other_within_a_second(cluster):
    server_a, server_b = cluster.servers
    # B may still show, for up to the max age, what the tests before this one changed.
    time.sleep(AVAILABILITY_MAX_AGE + 0.2)
    before = seats_shown(server_b)[QUIET]
    status, body = Participant("10.0.1.1").register(
        server_a, email="newcomer@example.org", workshop=str(QUIET)
    )
    assert status == 200 and "Votre inscription est confirmée" in body, body
    time.sleep(AVAILABILITY_MAX_AGE + 0.2)
    assert seats_shown(server_b)[QUIET] == before + 1


def test_the_rate_limit_counts_one_address_across_both_servers(cluster):
    person = Participant("10.0.2.1")
    statuses = [
        person.register(
            cluster.servers[n % 2], email=f"insistent{n}@example.org", workshop=str(QUIET)
        )[0]
        for n in range(REGISTRATIONS_PER_ADDRESS + 1)
    ]
    assert statuses == [200] * REGISTRATIONS_PER_ADDRESS + [429]
