"""Fixtures: the app on SQLite and PostgreSQL, a real SMTP server, Chromium, a live server."""

from __future__ import annotations

import email
import email.policy
import html
import os
import re
import shutil
import socket
import threading
import uuid
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from webapp import create_app
from webapp.config import TestingConfig, database_url
from webapp.event_file import load_event
from webapp.extensions import db

ON_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TABLES = (
    "audit_entry, outbox_message, mailing, registration, programme_item, workshop, event, "
    "user_account"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def missing(reason: str):
    """Without CI a missing service skips its tests; on CI it fails them."""
    if ON_CI:
        pytest.fail(f"{reason} (required when CI=true)", pytrace=False)
    pytest.skip(reason)


def migrated(url: str) -> None:
    app = create_app(TestingConfig, {"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite file migrated once, copied for each test."""
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite"
    migrated(f"sqlite:///{path}")
    return path


@contextmanager
def fresh_postgres_database(prefix: str):
    """A new, empty database named PREFIX_…, dropped on leaving; gives its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        missing(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {error}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url():
    """A database of its own for this test run, migrated once, dropped at the end."""
    with fresh_postgres_database("atelier_test") as url:
        migrated(database_url(url))
        yield url


@pytest.fixture
def redis_rate_limit(config_overrides) -> str:
    """The rate limit on in Redis, under a key prefix of this test's own (other tests, and other
    test runs, may share the server); returns the prefix."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        missing(f"Redis is not reachable at {REDIS_URL}: {error}")
    prefix = f"atelier-test-{uuid.uuid4().hex[:12]}"
    config_overrides.update(
        RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=prefix
    )
    yield prefix
    for key in client.scan_iter(f"*{prefix}*"):
        client.delete(key)
    client.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "atelier.sqlite"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    return url


@pytest.fixture
def config_overrides() -> dict:
    """Tests override settings by redefining this fixture or updating it."""
    return {}


@pytest.fixture
def app(db_url, config_overrides):
    app = create_app(
        TestingConfig,
        {
            "SQLALCHEMY_DATABASE_URI": database_url(db_url),
            "PUBLIC_URL": "http://atelier.test",
            **config_overrides,
        },
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def csrf_on(config_overrides):
    """Forms need their CSRF token, as in production (tests turn it off by default)."""
    config_overrides["WTF_CSRF_ENABLED"] = True


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def event_data(**changes) -> dict:
    """A small event that is not the sample: three workshops, registration open."""
    day = date.today() + timedelta(days=20)
    data = {
        "event": {
            "slug": "colloque-test",
            "title": "Colloque sur les communs urbains",
            "date": day.isoformat(),
            "starts": "09:30",
            "ends": "17:00",
            "venue": "Maison des associations",
            "address": "Rue de l'Exemple 12, 4000 Liège",
            "contact_email": "orga@colloque.test",
            "registration_note": "Inscription gratuite.",
        },
        "programme": [
            {"starts": "09:30", "title": "Accueil", "kind": "plenary"},
            {"starts": "10:00", "title": "Ateliers en parallèle", "kind": "workshops"},
            {"starts": "12:30", "title": "Repas", "kind": "break"},
        ],
        "workshops": [
            {
                "number": 1,
                "title": "Jardins partagés",
                "description": "Cultiver ensemble.",
                "capacity": 5,
            },
            {
                "number": 2,
                "title": "Habitat groupé",
                "description": "Vivre ensemble.",
                "capacity": 3,
            },
            {
                "number": 3,
                "title": "Monnaies locales",
                "description": "Échanger autrement.",
                "capacity": 1,
            },
        ],
    }
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            data[section][field] = value
        else:
            data[section] = value
    return data


@pytest.fixture
def event_factory(app):
    def make(**changes):
        with app.app_context():
            event = load_event(db.session, event_data(**changes)).event
            db.session.commit()
            return event.id

    return make


@pytest.fixture
def event(event_factory):
    return event_factory()


def registration_form(**changes) -> dict:
    form = {
        "first_name": "Awa",
        "last_name": "Diallo",
        "email": "awa.diallo@example.org",
        "organisation": "ASBL Quartiers",
        "workshop": "1",
        "lunch": "yes",
        "dietary": "",
        "consent": "y",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def readable(response) -> str:
    """The body as a reader sees it: HTML entities decoded, a non-breaking space as a space."""
    return as_read(html.unescape(response.get_data(as_text=True)))


def shown_text(response) -> str:
    """The page's words as a reader sees them, tags left out."""
    return " ".join(re.sub(r"<[^>]+>", " ", readable(response)).split())


def sign_up(client, name: str, workshop: int, **changes):
    """Registers NAME Test <name@example.org> for WORKSHOP through the public form."""
    response = client.post(
        "/inscription",
        data=registration_form(
            first_name=name,
            last_name="Test",
            email=f"{name.lower()}@example.org",
            workshop=str(workshop),
            **changes,
        ),
    )
    assert response.status_code == 303, response.get_data(as_text=True)


def as_read(text: str) -> str:
    return text.replace("\u00a0", " ")


def mail_body(message, part: str = "plain") -> str:
    """One part of a received e-mail, as its reader sees it."""
    return as_read(message.get_body(preferencelist=(part,)).get_content())


def count(app, sql: str, **params) -> int:
    with app.app_context():
        return db.session.execute(text(sql), params).scalar_one()


class LiveServer:
    def __init__(self, app):
        from werkzeug.serving import make_server

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_exc):
        self._server.shutdown()
        self._thread.join(timeout=10)


@pytest.fixture
def live_server(app):
    with LiveServer(app) as server:
        yield server


class RecordingHandler:
    """An SMTP server's behaviour: keeps what it accepts; can be told to fail."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.data_reply: str | None = None  # e.g. "451 4.3.0 try later"
        self.refused_recipients: dict[str, str] = {}  # address -> "550 ..." reply
        self.drop_connection = False
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused_recipients:
            return self.refused_recipients[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.drop_connection:
            server.transport.close()
            return "421 closing"
        if self.data_reply:
            return self.data_reply
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


class SMTPServer:
    def __init__(self):
        self.handler = RecordingHandler()
        self.port = free_port()
        self.controller = None

    @property
    def messages(self):
        return self.handler.messages

    def start(self):
        from aiosmtpd.controller import Controller

        # A controller cannot start twice: a restarted server is a new one on the same port.
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(config_overrides):
    server = SMTPServer()
    server.start()
    config_overrides.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, MAIL_TIMEOUT_SECONDS=5)
    yield server
    server.stop()


PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_user(app):
    """Creates a dashboard account; returns its e-mail (the password is PASSWORD)."""

    def make(email: str, role: str = "organiser") -> str:
        from webapp.accounts import create_user
        from webapp.audit import SYSTEM
        from webapp.models import Role

        with app.app_context():
            create_user(db.session, SYSTEM, email, PASSWORD, Role(role))
            db.session.commit()
        return email

    return make


def log_in(client, email: str, password: str = PASSWORD):
    return client.post("/admin/login", data={"email": email, "password": password})


@pytest.fixture
def admin_client(app, make_user):
    """A test client logged in as an admin."""
    client = app.test_client()
    response = log_in(client, make_user("admin@atelier.test", "admin"))
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


@pytest.fixture
def organiser_client(app, make_user):
    """A test client logged in as an organiser."""
    client = app.test_client()
    response = log_in(client, make_user("organiser@atelier.test", "organiser"))
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


@pytest.fixture
def add_registration(app, event):
    """Registers someone through the domain function (the public form refuses control
    characters, which the export must still survive); returns the registration's id."""
    added = 0

    def add(first_name="Awa", last_name="Diallo", organisation=None, workshop=1, **changes):
        from webapp.models import Event
        from webapp.registration import Applicant, register

        nonlocal added
        added += 1
        applicant = Applicant(
            first_name=first_name,
            last_name=last_name,
            email=changes.pop("email", f"person{added}@example.org"),
            organisation=organisation,
            workshop_number=workshop,
            lunch=changes.pop("lunch", True),
            dietary=changes.pop("dietary", None),
            language="fr",
        )
        with app.app_context():
            result = register(db.session, db.session.get(Event, event), applicant)
            db.session.commit()
            return result.registration.id

    return add
