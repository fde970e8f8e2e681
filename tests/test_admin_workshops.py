"""The workshops page: rosters and waiting lists, capacity changes, opening and closing
registration."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import PASSWORD, count, readable, registration_form, shown_text, sign_up

WORKSHOPS = [
    {"number": 1, "title": "Cartographie", "description": "Des cartes.", "capacity": 3},
    {"number": 2, "title": "Réparation", "description": "Des vélos.", "capacity": 1},
]


@pytest.fixture
def full_workshop(client, event_factory):
    """Workshop 2 has one seat, taken by Ana; Bea, Cy and Dan wait, in that order."""
    event_factory(workshops=WORKSHOPS)
    sign_up(client, "Ana", 2, organisation="ASBL Vélo", dietary="végétalien")
    for name in ("Bea", "Cy", "Dan"):
        sign_up(client, name, 2)


def status_of(app, name: str) -> str:
    return count(app, "SELECT status FROM registration WHERE first_name = :n", n=name)


def seats_match_confirmed_rows(app) -> bool:
    mismatched = count(
        app,
        "SELECT count(*) FROM workshop w WHERE w.seats_taken != (SELECT count(*) FROM "
        "registration r WHERE r.workshop_id = w.id AND r.status = 'confirmed')",
    )
    return mismatched == 0


def test_the_list_shows_each_workshops_seats_and_links_to_its_roster(
    organiser_client, full_workshop
):
    page = organiser_client.get("/admin/ateliers")
    assert page.status_code == 200
    text = shown_text(page)
    assert "1. Cartographie 3 0 0" in text
    assert "2. Réparation 1 1 3" in text
    assert 'href="/admin/ateliers/2"' in page.get_data(as_text=True)
    # Organisers see the figures, not the admins' forms.
    assert "Changer la capacité" not in text and "Clôturer" not in text


def test_a_workshops_roster_lists_the_seated_and_the_waiting_list_in_order(
    organiser_client, full_workshop
):
    page = organiser_client.get("/admin/ateliers/2")
    assert page.status_code == 200
    text = shown_text(page)
    assert re.search(r"1 Ana Test ASBL Vélo .* oui végétalien pas encore arrivé·e", text)
    waiting = text.split("Liste d'attente", 1)[1]
    assert re.search(r"1 Bea Test .* 2 Cy Test .* 3 Dan Test", waiting)
    assert organiser_client.get("/admin/ateliers/9").status_code == 404


def capacity(client, number: int, value):
    return client.post(f"/admin/ateliers/{number}/capacite", data={"capacity": value})


def test_capacity_below_the_confirmed_seats_is_refused(app, admin_client, client, full_workshop):
    sign_up(client, "Eva", 1)
    sign_up(client, "Fil", 1)
    response = capacity(admin_client, 1, "1")
    assert response.status_code == 409
    assert "ne peut pas descendre sous les 2 places déjà prises" in shown_text(response)
    assert count(app, "SELECT capacity FROM workshop WHERE number = 1") == 3
    assert count(app, "SELECT count(*) FROM audit_entry WHERE action LIKE 'workshop.%'") == 0
    assert capacity(admin_client, 1, "2").status_code == 303
    assert count(app, "SELECT capacity FROM workshop WHERE number = 1") == 2


def test_a_larger_capacity_promotes_the_first_people_waiting(app, admin_client, full_workshop):
    response = capacity(admin_client, 2, "3")
    assert response.status_code == 303
    text = shown_text(admin_client.get(response.headers["Location"]))
    assert "Atelier 2 : capacité 1 → 3." in text
    assert "2 personnes de la liste d'attente ont reçu une place" in text

    assert [status_of(app, n) for n in ("Ana", "Bea", "Cy", "Dan")] == [
        "confirmed",
        "confirmed",
        "confirmed",
        "waitlisted",
    ]
    assert seats_match_confirmed_rows(app)
    promoted_mails = count(
        app,
        "SELECT count(*) FROM outbox_message WHERE kind = 'promoted' "
        "AND recipient IN ('bea@example.org', 'cy@example.org') AND state = 'queued'",
    )
    assert promoted_mails == 2
    assert (
        count(
            app,
            "SELECT count(*) FROM outbox_message WHERE recipient = 'dan@example.org' "
            "AND kind = 'promoted'",
        )
        == 0
    )
    entry = count(
        app,
        "SELECT summary FROM audit_entry WHERE action = 'workshop.capacity_changed' "
        "AND actor = 'admin:admin@atelier.test'",
    )
    assert entry == "workshop 2: capacity 1 → 3, 2 promoted from the waiting list"
    assert (
        count(app, "SELECT count(*) FROM audit_entry WHERE action = 'registration.promoted'") == 2
    )


@pytest.mark.parametrize("garbage", ["abc", "-1", str(10**12), "", "10001", "1.5", "٣"])
def test_garbage_capacity_gets_a_french_message_not_an_error(
    app, admin_client, full_workshop, garbage
):
    response = capacity(admin_client, 2, garbage)
    assert response.status_code == 422
    assert "Indiquez un nombre entier de places, de 0 à 10000." in shown_text(response)
    assert count(app, "SELECT capacity FROM workshop WHERE number = 2") == 1


def test_a_capacity_posted_as_json_is_refused_cleanly(app, admin_client, full_workshop):
    response = admin_client.post("/admin/ateliers/2/capacite", json={"capacity": 5})
    assert response.status_code == 422
    assert capacity(admin_client, 9, "5").status_code == 404


def test_organisers_cannot_change_capacity_nor_the_registration_window(
    app, organiser_client, full_workshop
):
    assert capacity(organiser_client, 2, "5").status_code == 403
    closing = organiser_client.post("/admin/ateliers/inscriptions/cloturer", data={"confirm": "y"})
    assert closing.status_code == 403
    assert organiser_client.post("/admin/ateliers/inscriptions/rouvrir").status_code == 403
    assert count(app, "SELECT capacity FROM workshop WHERE number = 2") == 1
    assert (
        count(app, "SELECT count(*) FROM audit_entry WHERE action LIKE 'event.registration%'") == 0
    )


def test_closing_and_reopening_registration_applies_to_the_public_form(
    app, client, admin_client, event
):
    unconfirmed = admin_client.post("/admin/ateliers/inscriptions/cloturer")
    assert unconfirmed.status_code == 422
    assert "Cochez la case pour confirmer la clôture." in shown_text(unconfirmed)

    closing = admin_client.post("/admin/ateliers/inscriptions/cloturer", data={"confirm": "y"})
    assert closing.status_code == 303
    refused = client.post("/inscription", data=registration_form())
    assert refused.status_code == 409
    assert "Les inscriptions sont clôturées." in shown_text(refused)
    assert "Les inscriptions sont clôturées." in shown_text(client.get("/"))
    assert count(app, "SELECT count(*) FROM registration") == 0
    again = admin_client.post("/admin/ateliers/inscriptions/cloturer", data={"confirm": "y"})
    assert again.status_code == 409

    assert admin_client.post("/admin/ateliers/inscriptions/rouvrir").status_code == 303
    assert client.post("/inscription", data=registration_form()).status_code == 303
    assert count(app, "SELECT count(*) FROM registration") == 1
    actions = count(
        app,
        "SELECT count(*) FROM audit_entry WHERE action IN "
        "('event.registration_closed', 'event.registration_reopened')",
    )
    assert actions == 2
    assert admin_client.post("/admin/ateliers/inscriptions/rouvrir").status_code == 409


def test_registration_cannot_reopen_once_its_default_closing_time_has_passed(
    app, admin_client, event_factory
):
    today = datetime.now(ZoneInfo("Europe/Brussels")).date()
    event_factory(event__date=today.isoformat(), event__starts="00:00", event__ends="23:59")
    page = shown_text(admin_client.get("/admin/ateliers"))
    assert "Rouvrir" not in page
    refused = admin_client.post("/admin/ateliers/inscriptions/rouvrir")
    assert refused.status_code == 409
    assert "Trop tard pour rouvrir" in shown_text(refused)


def test_capacity_changes_need_the_csrf_token(csrf_on, app, make_user, event):
    admin = app.test_client()
    login = admin.get("/admin/login").get_data(as_text=True)
    login_token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login).group(1)
    logged_in = admin.post(
        "/admin/login",
        data={
            "email": make_user("admin@atelier.test", "admin"),
            "password": PASSWORD,
            "csrf_token": login_token,
        },
    )
    assert logged_in.status_code == 303
    assert capacity(admin, 2, "7").status_code == 400
    assert count(app, "SELECT capacity FROM workshop WHERE number = 2") == 3
    page = admin.get("/admin/ateliers").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = admin.post("/admin/ateliers/2/capacite", data={"capacity": "7", "csrf_token": token})
    assert response.status_code == 303
    assert count(app, "SELECT capacity FROM workshop WHERE number = 2") == 7


def test_the_registration_window_is_shown_in_the_events_time_zone(admin_client, event):
    # Registration closes by default at midnight in Brussels: 22h or 23h UTC the day before.
    page = readable(admin_client.get("/admin/ateliers"))
    assert re.search(r"Les inscriptions sont ouvertes jusqu'au \w+ \d+ \w+ \d{4} à 0h\.", page)
