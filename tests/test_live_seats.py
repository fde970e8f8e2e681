"""Live seats: polls answered from memory, and every change shown within the max age, on every
server."""

import re
import sqlite3
import time
from datetime import timedelta

import pytest
import time_machine
from conftest import event_data, readable, registration_form, sign_up
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.engine import Engine

from webapp import create_app
from webapp.config import TestingConfig
from webapp.event_file import load_event
from webapp.extensions import db
from webapp.models import Event
from webapp.security import SECURITY_HEADERS

MAX_AGE = 0.5
POLL = "/places?lang=fr"


@pytest.fixture
def seats_cached(config_overrides):
    """Each server re-reads the seats at most every MAX_AGE seconds, as in production."""
    config_overrides["AVAILABILITY_MAX_AGE_SECONDS"] = MAX_AGE


@pytest.fixture
def seats_cached_long(config_overrides):
    """A max age longer than any test: whatever shows a change was not waiting for it."""
    config_overrides["AVAILABILITY_MAX_AGE_SECONDS"] = 3600


@pytest.fixture
def other_server(app):
    """The same site served by another process (or machine) on the same database."""
    other = create_app(
        TestingConfig,
        {
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "PUBLIC_URL": app.config["PUBLIC_URL"],
        },
    )
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def seats_shown(response, workshop: int = 1) -> str:
    shown = re.search(rf'id="seats-{workshop}"[^>]*>(.*?)</p>', readable(response), re.S)
    assert shown, readable(response)
    return " ".join(re.sub(r"<[^>]+>", " ", shown.group(1)).split())


@pytest.fixture
def statements():
    """Every SQL statement sent to any database while the test runs."""
    sent: list[str] = []

    def record(_connection, _cursor, statement, *_args):
        sent.append(statement)

    sqlalchemy_event.listen(Engine, "before_cursor_execute", record)
    yield sent
    sqlalchemy_event.remove(Engine, "before_cursor_execute", record)


def test_a_seat_taken_through_another_server_shows_here_within_the_max_age(
    seats_cached, client, event, other_server
):
    assert seats_shown(client.get(POLL)) == "5 places restantes"

    sign_up(other_server.test_client(), "Awa", workshop=1)

    time.sleep(MAX_AGE + 0.1)
    assert seats_shown(client.get(POLL)) == "4 places restantes"
    assert seats_shown(client.get("/")) == "4 places restantes"


def test_polls_within_the_max_age_cost_no_query_and_answer_alike(
    seats_cached_long, client, event, statements
):
    first = client.get(POLL)
    choices = client.get(POLL + "&part=choices")
    english = client.get("/places?lang=en")
    statements.clear()

    again = [client.get(POLL) for _ in range(20)]
    not_modified = client.get(POLL, headers={"If-None-Match": first.headers["ETag"]})
    assert client.get(POLL + "&part=choices").data == choices.data
    assert client.get("/places?lang=en").data == english.data

    assert statements == []
    assert "5 seats left" in readable(english)
    assert {response.data for response in again} == {first.data}
    assert not_modified.status_code == 304 and not_modified.data == b""
    for response in [*again, not_modified]:
        assert response.headers["ETag"] == first.headers["ETag"]
        assert response.headers["Cache-Control"] == "no-cache"
        for name, value in SECURITY_HEADERS:
            assert response.headers[name] == value
    assert again[0].headers["Content-Type"] == first.headers["Content-Type"]


def test_this_servers_own_registration_shows_at_once(seats_cached_long, client, event):
    assert seats_shown(client.get(POLL)) == "5 places restantes"
    assert seats_shown(client.get("/")) == "5 places restantes"

    sign_up(client, "Awa", workshop=1)

    assert seats_shown(client.get(POLL)) == "4 places restantes"
    assert seats_shown(client.get("/")) == "4 places restantes"


def test_a_poll_without_its_language_follows_the_visitor(seats_cached_long, client, event):
    english = client.get("/places", headers={"Accept-Language": "en"})
    assert "5 seats left" in readable(english)
    assert {"Cookie", "Accept-Language"} <= set(english.vary)
    assert "Accept-Language" not in client.get(POLL).vary


def test_an_event_reloaded_elsewhere_shows_within_the_max_age(
    seats_cached, client, event, other_server
):
    assert "Colloque sur les communs urbains" in readable(client.get("/"))

    with other_server.app_context():
        load_event(db.session, event_data(event__title="Colloque sur les jardins"))
        db.session.commit()

    time.sleep(MAX_AGE + 0.1)
    assert "Colloque sur les jardins" in readable(client.get("/"))


def test_the_page_closes_registration_on_time_though_read_earlier(
    seats_cached_long, app, client, event
):
    assert "Je m'inscris" in readable(client.get("/"))
    with app.app_context():
        closes = db.session.get(Event, event).registration_closes

    with time_machine.travel(closes + timedelta(minutes=1)):
        page = readable(client.get("/"))
    assert "Les inscriptions sont clôturées." in page
    assert "Je m'inscris" not in page


def csrf_token_in(response) -> str:
    tokens = set(re.findall(r'name="csrf_token" type="hidden" value="([^"]+)"', readable(response)))
    tokens |= set(re.findall(r'"X-CSRFToken": "([^"]+)"', readable(response)))
    assert len(tokens) == 1, tokens
    return tokens.pop()


def test_each_visitor_of_the_page_gets_a_token_of_their_own_that_works(
    seats_cached_long, csrf_on, app, event
):
    first, second = app.test_client(), app.test_client()
    first_token = csrf_token_in(first.get("/"))
    second_token = csrf_token_in(second.get("/"))
    assert first_token != second_token

    for client, token, email in (
        (first, first_token, "a@example.org"),
        (second, second_token, "b@example.org"),
    ):
        form = registration_form(email=email, csrf_token=token)
        assert client.post("/inscription", data=form).status_code == 303
    refused = second.post("/inscription", data=registration_form(csrf_token=first_token))
    assert refused.status_code == 422


def test_choosing_a_workshop_from_its_card_preselects_it_in_every_language(
    seats_cached_long, client, event
):
    page = client.get("/?atelier=2").get_data(as_text=True)
    assert re.search(r'<input[^>]*value="2"[^>]*checked', page)
    assert "/langue/en?next=/?atelier%3D2" in page
    assert not re.search(
        r'<input[^>]*value="1"[^>]*checked', client.get("/").get_data(as_text=True)
    )
    english = client.get("/?atelier=2", headers={"Accept-Language": "en"})
    assert "Choose this workshop" in readable(english)
    assert re.search(r'<input[^>]*value="2"[^>]*checked', english.get_data(as_text=True))


@pytest.fixture
def impatient_writers(config_overrides):
    """A SQLite connection gives up after one second of waiting for the write lock."""
    config_overrides["SQLITE_BUSY_TIMEOUT"] = 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_on_sqlite_a_writer_holding_the_lock_does_not_stall_the_seats(
    impatient_writers, db_url, event, app
):
    writer = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE workshop SET title = title")
    try:
        poll = app.test_client().get(POLL)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert poll.status_code == 200
    assert seats_shown(poll) == "5 places restantes"
