"""Registering: seats, waiting list, duplicates, bad input, htmx and plain forms."""

import html
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import count, readable, registration_form

HTMX = {"HX-Request": "true"}


def test_registration_takes_a_seat_and_queues_its_confirmation(app, client, event):
    response = client.post("/inscription", data=registration_form())
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/inscription/confirmation")
    page = readable(client.get(response.headers["Location"]))
    assert "Votre inscription est confirmée" in page
    assert "Jardins partagés" in page
    assert "awa.diallo@example.org" in page
    assert count(app, "SELECT seats_taken FROM workshop WHERE number = 1") == 1
    assert count(app, "SELECT count(*) FROM registration WHERE status = 'confirmed'") == 1
    assert (
        count(
            app,
            "SELECT count(*) FROM outbox_message WHERE kind = 'confirmation' "
            "AND recipient = 'awa.diallo@example.org' AND state = 'queued'",
        )
        == 1
    )


def test_htmx_registration_returns_the_confirmation_panel_and_refreshes_seats(client, event):
    response = client.post("/inscription", data=registration_form(), headers=HTMX)
    assert response.status_code == 200
    body = readable(response)
    assert body.lstrip().startswith('<div id="registration"')
    assert "<html" not in body
    assert "Votre inscription est confirmée" in body
    assert "Un e-mail de confirmation part à awa.diallo@example.org" in body
    # The cards come along, counted after this registration, whichever server the next poll
    # reaches.
    card = re.search(r'<p class="seats[^"]*" id="seats-1" hx-swap-oob="true">.*?</p>', body, re.S)
    assert card and "4 places restantes" in card.group(0)
    assert "HX-Request" in response.headers["Vary"]


def test_a_waitlisted_htmx_registration_shows_the_waiting_list_grow_on_the_card(client, event):
    client.post("/inscription", data=registration_form(workshop="3"), headers=HTMX)
    response = client.post(
        "/inscription", data=registration_form(workshop="3", email="zoe@example.org"), headers=HTMX
    )
    card = re.search(r'id="seats-3" hx-swap-oob="true">.*?</p>', readable(response), re.S)
    assert card and "liste d'attente (1 personne)" in card.group(0)


def test_invalid_htmx_registration_returns_the_form_with_messages_and_422(app, client, event):
    response = client.post(
        "/inscription",
        data=registration_form(first_name="", email="pas-une-adresse", consent=None),
        headers=HTMX,
    )
    assert response.status_code == 422
    body = readable(response)
    assert "<html" not in body and '<form class="registration-form"' in body
    assert "Indiquez votre prénom." in body
    assert "Cette adresse e-mail n'est pas valide." in body
    assert "Votre accord est nécessaire pour vous inscrire." in body
    assert 'value="Diallo"' in body  # what was typed is kept
    assert count(app, "SELECT count(*) FROM registration") == 0


def test_invalid_plain_registration_renders_the_whole_page_with_422(client, event):
    response = client.post("/inscription", data=registration_form(workshop="99"))
    assert response.status_code == 422
    body = readable(response)
    assert "<html" in body and "field-error" in body


def test_full_workshop_puts_the_participant_on_its_waiting_list(app, client, event):
    client.post("/inscription", data=registration_form(workshop="3", email="first@example.org"))
    page = readable(client.get("/"))
    assert "Complet" in page and "liste d'attente" in page
    response = client.post(
        "/inscription",
        data=registration_form(workshop="3", email="second@example.org"),
        headers=HTMX,
    )
    body = readable(response)
    assert "Vous êtes sur la liste d'attente" in body
    assert "en position 1" in body
    assert "HX-Trigger-After-Settle" not in response.headers
    assert count(app, "SELECT count(*) FROM registration WHERE status = 'waitlisted'") == 1
    assert count(app, "SELECT seats_taken FROM workshop WHERE number = 3") == 1
    assert count(app, "SELECT count(*) FROM outbox_message WHERE kind = 'waitlisted'") == 1


@pytest.mark.parametrize("variant", ["AWA.Diallo@Example.org", "  awa.diallo@example.org  "])
def test_duplicate_address_registers_nothing_and_reveals_nothing(app, client, event, variant):
    client.post("/inscription", data=registration_form())
    response = client.post(
        "/inscription",
        data=registration_form(email=variant, first_name="Intrus", workshop="2"),
        headers=HTMX,
    )
    assert response.status_code == 200
    body = readable(response)
    assert "Vérifiez votre boîte mail" in body
    assert "Jardins partagés" not in body and "déjà" not in body
    assert "inscri" not in body.lower(), "the panel must not hint at an existing registration"
    assert count(app, "SELECT count(*) FROM registration") == 1
    assert count(app, "SELECT seats_taken FROM workshop WHERE number = 2") == 0
    assert count(app, "SELECT count(*) FROM outbox_message WHERE kind = 'management-link'") == 1


def test_honeypot_rejects_bots(app, client, event):
    response = client.post(
        "/inscription", data=registration_form(website="http://spam.example"), headers=HTMX
    )
    assert response.status_code == 422
    body = readable(response)
    assert "outil de remplissage automatique" in body
    assert 'href="#website"' not in body, "nobody can correct a hidden field"
    assert count(app, "SELECT count(*) FROM registration") == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("first_name", "A" * 101, "100 caractères au maximum."),
        ("last_name", "Diallo\nBcc: x@example.org", "caractères non autorisés"),
        ("organisation", "ASBL\x00", "caractères non autorisés"),
        ("first_name", "Awa\u202eilaiD", "caractères non autorisés"),
        ("organisation", "ASBL\u2028Bcc", "caractères non autorisés"),
        ("dietary", "sans\x85gluten", "caractères non autorisés"),
        ("email", "jöhn@example.org", "n'est pas valide"),
        ("email", "a@b", "n'est pas valide"),
        ("email", "x" * 250 + "@example.org", "254 caractères au maximum."),
        ("dietary", "x" * 501, "500 caractères au maximum."),
        ("lunch", "maybe", "Dites-nous si vous prenez le lunch."),
        ("workshop", "abc", "Choisissez un atelier."),
        ("workshop", "9", "Choisissez un atelier."),
    ],
)
def test_oversize_and_malformed_fields_get_422_with_a_message(
    app, client, event, field, value, message
):
    response = client.post("/inscription", data=registration_form(**{field: value}), headers=HTMX)
    assert response.status_code == 422
    body = readable(response)
    assert f'id="{field}-error"' in body
    if message:
        assert message in body
    assert count(app, "SELECT count(*) FROM registration") == 0


@pytest.fixture
def limited(config_overrides):
    config_overrides.update(RATELIMIT_ENABLED=True, REGISTRATION_RATE_LIMIT="3 per minute")


def test_rate_limit_stops_a_client_posting_too_often(limited, app, client, event):
    statuses = [
        client.post(
            "/inscription", data=registration_form(email=f"p{i}@example.org"), headers=HTMX
        ).status_code
        for i in range(5)
    ]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]
    last = client.post("/inscription", data=registration_form(email="p9@example.org"), headers=HTMX)
    assert "Trop de tentatives" in readable(last)
    assert count(app, "SELECT count(*) FROM registration") == 3


def test_registration_closed_after_the_deadline_shows_no_form(client, event_factory):
    event_factory(event__registration_closes="2000-01-01T00:00")
    page = readable(client.get("/"))
    assert "Les inscriptions sont clôturées." in page
    assert 'name="first_name"' not in page
    assert client.post("/inscription", data=registration_form()).status_code == 409


def test_registration_not_yet_open_says_when_it_opens(client, event_factory):
    event_factory(
        event__registration_opens="2099-01-01T09:00", event__registration_closes="2099-02-01"
    )
    # The event itself is sooner than its registration window: the loader refuses nothing here,
    # the page simply says when registration opens.
    page = readable(client.get("/"))
    assert "Les inscriptions ouvriront le" in page


def test_past_event_says_it_took_place(client, event_factory):
    event_factory(event__date="2024-04-23")
    page = readable(client.get("/"))
    assert "Cette journée a eu lieu" in page
    assert 'name="first_name"' not in page


def test_availability_answers_304_to_its_current_etag_and_changes_after_a_registration(
    client, event
):
    first = client.get("/places", headers=HTMX)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert "5 places restantes" in readable(first)
    again = client.get("/places", headers={**HTMX, "If-None-Match": etag})
    assert again.status_code == 304
    client.post("/inscription", data=registration_form())
    after = client.get("/places", headers={**HTMX, "If-None-Match": etag})
    assert after.status_code == 200
    assert after.headers["ETag"] != etag
    assert "4 places restantes" in readable(after)


def test_a_workshop_shows_its_last_seats_once_half_of_them_are_taken(client, event):
    for number in range(3):
        client.post("/inscription", data=registration_form(email=f"p{number}@example.org"))
    seats = readable(client.get("/places", headers=HTMX))
    assert "Dernières places : plus que 2" in seats  # workshop 1: 3 of 5 taken
    assert "3 places restantes" in seats  # workshop 2: 3 seats, nobody yet
    assert "1 place restante" in seats  # workshop 3: its only seat, still free
    client.post("/inscription", data=registration_form(email="p3@example.org", workshop="2"))
    client.post("/inscription", data=registration_form(email="p4@example.org", workshop="2"))
    assert "Dernière place disponible" in readable(client.get("/places", headers=HTMX))


def test_availability_refreshes_cards_and_form_choices_separately(client, event):
    cards = readable(client.get("/places", headers=HTMX))
    choices = readable(client.get("/places?part=choices", headers=HTMX))
    assert 'id="seats-1" hx-swap-oob="true"' in cards and "choice-seats" not in cards
    assert 'id="choice-seats-1" hx-swap-oob="true"' in choices and 'id="seats-1"' not in choices
    page = readable(client.get("/"))
    assert 'hx-get="/places?part=choices&lang=fr"' in page


def _post_htmx(url: str, form: dict) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(form).encode(), headers={"HX-Request": "true"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, html.unescape(reply.read().decode())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_fifty_concurrent_registrations_never_overbook(app, live_server, event_factory):
    event_factory(
        workshops=[
            {"number": 1, "title": "Atelier disputé", "description": "Très demandé.", "capacity": 5}
        ]
    )
    start = threading.Barrier(50)

    def register(i: int) -> tuple[int, str]:
        start.wait()
        return _post_htmx(
            f"{live_server.url}/inscription",
            registration_form(email=f"person{i}@example.org", workshop="1"),
        )

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(register, range(50)))
    assert [status for status, _ in answers] == [200] * 50
    bodies = [body for _, body in answers]
    assert sum("Votre inscription est confirmée" in body for body in bodies) == 5
    waiting = [body for body in bodies if "Vous êtes sur la liste d'attente" in body]
    assert len(waiting) == 45
    positions = sorted(int(re.search(r"en position (\d+)", body).group(1)) for body in waiting)
    assert positions == list(range(1, 46))  # each told a distinct place in the queue
    assert count(app, "SELECT count(*) FROM registration WHERE status = 'confirmed'") == 5
    assert count(app, "SELECT count(*) FROM registration WHERE status = 'waitlisted'") == 45
    assert count(app, "SELECT seats_taken FROM workshop") == 5
    assert count(app, "SELECT count(*) FROM outbox_message") == 50


def test_confirmation_page_without_its_registration_stays_neutral(app, client, event):
    client.post("/inscription", data=registration_form())
    with app.app_context():
        from webapp.extensions import db

        db.session.execute(db.text("DELETE FROM outbox_message"))
        db.session.execute(db.text("DELETE FROM registration"))
        db.session.commit()
    response = client.get("/inscription/confirmation")
    assert response.status_code == 200
    assert "Vérifiez votre boîte mail" in readable(response)


def test_expired_session_gives_the_form_back_with_one_clear_message(csrf_on, app, client, event):
    response = client.post("/inscription", data=registration_form(csrf_token="stale"), headers=HTMX)
    assert response.status_code == 422
    body = readable(response)
    assert "Votre session a expiré" in body
    assert "Corrigez les champs" not in body
    assert 'value="Awa"' in body
    assert count(app, "SELECT count(*) FROM registration") == 0


def test_choose_this_workshop_link_preselects_it_in_the_form(client, event):
    page = readable(client.get("/"))
    assert 'href="/?atelier=2#inscription"' in page
    chosen = readable(client.get("/?atelier=2"))
    assert re.search(r'<input type="radio" name="workshop" value="2"\s+required\s+checked>', chosen)
    assert "checked" not in readable(client.get("/?atelier=99")).split('name="workshop"')[1][:80]


def test_error_summary_links_each_message_to_its_field(client, event):
    response = client.post(
        "/inscription", data=registration_form(consent=None, lunch=None), headers=HTMX
    )
    body = readable(response)
    summary = body.split('class="form-summary"')[1].split("</div>")[0]
    assert '<a href="#consent">Votre accord est nécessaire pour vous inscrire.</a>' in summary
    assert '<a href="#lunch">' in summary and 'id="lunch"' in body
