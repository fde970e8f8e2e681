"""The registrations page: search, filters, sort and pages; a registration's detail and the
admins' actions on it (cancel, move, resend, correct)."""

import re
from datetime import timedelta

import pytest
from conftest import PASSWORD, as_read, count, readable, registration_form

from webapp.database import utcnow
from webapp.extensions import db
from webapp.models import Event, Registration, RegistrationStatus, Workshop

STATUS = "SELECT status FROM registration WHERE email = :email"
WORKSHOP_OF = (
    "SELECT workshop.number FROM registration JOIN workshop ON workshop.id = "
    "registration.workshop_id WHERE registration.email = :email"
)
MAILS = "SELECT count(*) FROM outbox_message WHERE recipient = :email AND kind = :kind"
AUDIT = "SELECT count(*) FROM audit_entry WHERE action = :action"
SEATS = "SELECT seats_taken FROM workshop WHERE number = :number"
CAPACITY = "SELECT capacity FROM workshop WHERE number = :number"


def register(client, email: str, workshop: str = "1", **changes) -> int:
    """Registers through the public form; returns the registration's id."""
    response = client.post(
        "/inscription", data=registration_form(email=email, workshop=workshop, **changes)
    )
    assert response.status_code == 303, readable(response)
    return count(
        client.application, "SELECT id FROM registration WHERE email = :email", email=email
    )


def assert_seats_match_confirmed(app) -> None:
    mismatched = count(
        app,
        "SELECT count(*) FROM workshop WHERE seats_taken != (SELECT count(*) FROM registration "
        "WHERE registration.workshop_id = workshop.id AND status = 'confirmed')",
    )
    assert mismatched == 0


def listing(admin_client, query: str = "", **headers):
    return admin_client.get(f"/admin/inscriptions{query}", headers=headers)


def names_in(response) -> list[str]:
    """The people listed, in the order of the table."""
    return re.findall(
        r'<th scope="row"><a href="[^"]+">([^<]+)</a>', response.get_data(as_text=True)
    )


@pytest.fixture
def people(client, event):
    """Four registrations: workshop 3 (one seat) full with one person waiting."""
    register(client, "awa.diallo@example.org", "1", first_name="Awa", last_name="Diallo")
    register(
        client,
        "marc.lambert@example.org",
        "2",
        first_name="Marc",
        last_name="Lambert",
        organisation="Ville de Namur",
        lunch="no",
    )
    register(
        client, "zoe.martin@example.org", "3", first_name="Zoé", last_name="Martin", lunch="no"
    )
    register(
        client,
        "bruno.waiting@example.org",
        "3",
        first_name="Bruno",
        last_name="Peeters",
        organisation="CPAS de LIÈGE",
    )


def test_the_list_shows_every_registration_with_its_details(admin_client, people):
    text = readable(listing(admin_client))
    assert "4 inscriptions." in text
    assert "awa.diallo@example.org" in text and "Ville de Namur" in text
    assert "Liste d'attente, position 1" in text
    assert "Confirmée" in text


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("diAL", ["Diallo Awa"]),
        ("awa d", ["Diallo Awa"]),
        ("LAMBERT@EXAMPLE", ["Lambert Marc"]),
        ("namur", ["Lambert Marc"]),
        ("liège", ["Peeters Bruno"]),  # "LIÈGE": SQLite's own lower() folds ASCII only
        ("zoé", ["Martin Zoé"]),
        ("%", []),
        ("nobody", []),
    ],
)
def test_search_finds_a_part_of_a_name_an_address_or_an_organisation(
    admin_client, people, typed, found
):
    response = listing(admin_client, f"?q={typed.replace('%', '%25')}")
    assert response.status_code == 200
    assert names_in(response) == found


def test_filters_narrow_the_list_by_workshop_status_and_lunch(admin_client, people):
    assert names_in(listing(admin_client, "?atelier=3")) == ["Martin Zoé", "Peeters Bruno"]
    assert names_in(listing(admin_client, "?status=waitlisted")) == ["Peeters Bruno"]
    assert names_in(listing(admin_client, "?lunch=no&sort=name")) == ["Lambert Marc", "Martin Zoé"]
    combined = listing(admin_client, "?atelier=3&status=confirmed&lunch=no")
    assert names_in(combined) == ["Martin Zoé"]
    assert "1 inscription correspond." in readable(combined)


def test_column_headers_sort_both_ways(admin_client, people):
    by_name = listing(admin_client, "?sort=name")
    assert names_in(by_name) == ["Diallo Awa", "Lambert Marc", "Martin Zoé", "Peeters Bruno"]
    page = by_name.get_data(as_text=True)
    assert 'aria-sort="ascending"' in page
    assert 'href="/admin/inscriptions?sort=name&amp;order=desc"' in page
    backwards = listing(admin_client, "?sort=name&order=desc")
    assert names_in(backwards) == ["Peeters Bruno", "Martin Zoé", "Lambert Marc", "Diallo Awa"]
    by_organisation = names_in(listing(admin_client, "?sort=organisation&order=desc"))
    assert by_organisation[:2] == ["Lambert Marc", "Peeters Bruno"]
    assert names_in(listing(admin_client, "?sort=workshop&order=desc"))[-1] == "Diallo Awa"


def add_waiting(app, how_many: int, workshop_number: int = 3) -> None:
    """People on a waiting list, inserted directly (no seat to keep in step)."""
    with app.app_context():
        event = db.session.query(Event).one()
        workshop = db.session.query(Workshop).filter_by(number=workshop_number).one()
        start = utcnow()
        for n in range(how_many):
            db.session.add(
                Registration(
                    event=event,
                    workshop=workshop,
                    first_name=f"Personne{n:03d}",
                    last_name=f"Nom{n:03d}",
                    email=f"p{n:03d}@example.org",
                    email_normalised=f"p{n:03d}@example.org",
                    status=RegistrationStatus.WAITLISTED,
                    lunch=False,
                    language="fr",
                    consent_at=start,
                    created_at=start + timedelta(seconds=n),
                    waitlisted_at=start + timedelta(seconds=n),
                    manage_token=f"token-{n:03d}",
                )
            )
        db.session.commit()


def test_long_lists_are_paginated_and_pages_keep_the_search(app, admin_client, event):
    add_waiting(app, 55)
    first = listing(admin_client, "?q=personne&sort=name")
    assert len(names_in(first)) == 50
    text = readable(first)
    assert "55 inscriptions correspondent." in text and "Page 1 sur 2" in text
    next_link = re.search(r'href="([^"]+)"[^>]*rel="next"', first.get_data(as_text=True))
    assert (
        next_link.group(1).replace("&amp;", "&")
        == "/admin/inscriptions?q=personne&sort=name&page=2"
    )
    second = listing(admin_client, "?q=personne&sort=name&page=2")
    assert names_in(second) == [f"Nom{n:03d} Personne{n:03d}" for n in range(50, 55)]
    assert "Liste d'attente, position 55" in readable(second)
    beyond = listing(admin_client, "?q=personne&sort=name&page=9")
    assert "Page 2 sur 2" in readable(beyond)


@pytest.mark.parametrize(
    "query",
    [
        "?page=abc",
        "?page=-3",
        "?page=0",
        "?page=%C2%B2",
        "?page=1e3",
        "?page=99999999999999999999",
        "?sort=evil",
        "?sort=name%00",
        "?order=sideways",
        "?q=%00%0d%0a%e2%80%ae",
        "?q=" + "x" * 5000,
        "?q=a&q=b&page=1&page=2",
    ],
)
def test_garbage_in_the_address_still_gives_a_sane_page(admin_client, people, query):
    response = listing(admin_client, query)
    assert response.status_code == 200
    assert "Inscriptions" in readable(response)


@pytest.mark.parametrize(
    "query", ["?status=x", "?atelier=99", "?atelier=abc", "?lunch=maybe", "?status=%00"]
)
def test_an_unknown_filter_gets_a_french_message_and_a_400(admin_client, people, query):
    response = listing(admin_client, query)
    assert response.status_code == 400
    assert "Ce filtre n'existe pas" in readable(response)


def test_an_htmx_search_gets_only_the_table_and_a_boosted_one_the_whole_page(admin_client, people):
    fragment = listing(admin_client, "?q=lamb", **{"HX-Request": "true"})
    assert fragment.status_code == 200
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="registrations-results">')
    assert "<html" not in body and 'id="search-text"' not in body
    assert names_in(fragment) == ["Lambert Marc"]
    assert "HX-Request" in fragment.headers["Vary"]
    boosted = listing(admin_client, "?q=lamb", **{"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in boosted.get_data(as_text=True)
    restored = listing(
        admin_client, "?q=lamb", **{"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restored.get_data(as_text=True)
    assert "HX-Request" in listing(admin_client).headers["Vary"]


def test_the_search_works_without_javascript(admin_client, people):
    page = listing(admin_client).get_data(as_text=True)
    form = re.search(r'<form id="registration-search"[^>]*>', page).group(0)
    assert 'method="get"' in form and 'action="/admin/inscriptions"' in form
    assert 'name="q"' in page and 'name="atelier"' in page and 'name="status"' in page
    assert 'hx-trigger="input changed delay:300ms, search"' in page


def registration_id(app, email: str) -> int:
    return count(app, "SELECT id FROM registration WHERE email = :email", email=email)


def detail(admin_client, app, email: str):
    return admin_client.get(f"/admin/inscriptions/{registration_id(app, email)}")


def test_the_detail_shows_every_field_the_history_and_the_mails(
    smtp, app, admin_client, runner, people
):
    assert runner.invoke(args=["mail", "send-due"]).exit_code == 0
    response = detail(admin_client, app, "bruno.waiting@example.org")
    assert response.status_code == 200
    text = readable(response)
    for shown in ("Bruno", "Peeters", "bruno.waiting@example.org", "CPAS de LIÈGE"):
        assert shown in text
    assert "Liste d'attente, position 1" in text
    # The history reads as the journal does: who, what, and the values before and after.
    assert "La personne inscrite" in text
    assert "Statut : — → liste d'attente" in text
    assert "Liste d'attente : Colloque sur les communs urbains" in text
    assert "Envoyé" in text


def test_a_registration_of_another_event_is_not_found(app, admin_client, people):
    with app.app_context():
        earlier = Event(
            slug="autre",
            title="Autre journée",
            date=(utcnow() - timedelta(days=30)).date(),
            starts=utcnow().time(),
            ends=utcnow().time(),
            venue="Ailleurs",
            address="Ailleurs",
            contact_email="autre@example.org",
            registration_closes=utcnow(),
        )
        workshop = Workshop(event=earlier, number=1, title="A", description="", capacity=5)
        other = Registration(
            event=earlier,
            workshop=workshop,
            first_name="Autre",
            last_name="Personne",
            email="autre@example.org",
            email_normalised="autre@example.org",
            status=RegistrationStatus.WAITLISTED,
            lunch=False,
            language="fr",
            consent_at=utcnow(),
            manage_token="autre-token",
        )
        db.session.add(other)
        db.session.commit()
        other_id = other.id
    assert admin_client.get(f"/admin/inscriptions/{other_id}").status_code == 404
    assert admin_client.get("/admin/inscriptions/999999").status_code == 404
    response = admin_client.post(
        f"/admin/inscriptions/{other_id}/annulation", data={"confirm": "y"}
    )
    assert response.status_code == 404
    assert count(app, STATUS, email="autre@example.org") == "waitlisted"


def action(admin_client, app, email: str, name: str, headers=None, **data):
    return admin_client.post(
        f"/admin/inscriptions/{registration_id(app, email)}/{name}", data=data, headers=headers
    )


def flashed(admin_client, response) -> str:
    assert response.status_code == 303, readable(response)
    return readable(admin_client.get(response.headers["Location"]))


def test_cancelling_frees_the_seat_for_the_first_person_waiting_and_tells_both(
    app, admin_client, people
):
    response = action(
        admin_client, app, "zoe.martin@example.org", "annulation", confirm="y", notify="y"
    )
    page = flashed(admin_client, response)
    assert "L'inscription de Zoé Martin est annulée. Un e-mail le lui confirme." in page
    assert "La place libérée revient à la première personne en liste d'attente." in page
    assert count(app, STATUS, email="zoe.martin@example.org") == "cancelled"
    assert count(app, STATUS, email="bruno.waiting@example.org") == "confirmed"
    assert count(app, MAILS, email="zoe.martin@example.org", kind="cancelled") == 1
    assert count(app, MAILS, email="bruno.waiting@example.org", kind="promoted") == 1
    entry = count(app, "SELECT actor FROM audit_entry WHERE action = 'registration.cancelled'")
    assert entry == "admin:admin@atelier.test"
    assert_seats_match_confirmed(app)

    again = action(admin_client, app, "zoe.martin@example.org", "annulation", confirm="y")
    assert "Cette inscription était déjà annulée." in flashed(admin_client, again)
    assert count(app, AUDIT, action="registration.cancelled") == 1
    assert_seats_match_confirmed(app)


def test_cancelling_without_the_mail_sends_nothing_to_the_participant(app, admin_client, people):
    response = action(admin_client, app, "awa.diallo@example.org", "annulation", confirm="y")
    assert "Un e-mail le lui confirme" not in flashed(admin_client, response)
    assert count(app, STATUS, email="awa.diallo@example.org") == "cancelled"
    assert count(app, MAILS, email="awa.diallo@example.org", kind="cancelled") == 0
    assert count(app, SEATS, number=1) == 0


def test_cancelling_needs_the_box_ticked(app, admin_client, people):
    response = action(admin_client, app, "awa.diallo@example.org", "annulation", notify="y")
    assert response.status_code == 422
    assert "Cochez la case pour confirmer l'annulation." in readable(response)
    assert count(app, STATUS, email="awa.diallo@example.org") == "confirmed"


def test_moving_a_seated_person_takes_a_seat_there_and_gives_theirs_to_the_first_waiting(
    app, admin_client, people
):
    target = count(app, "SELECT id FROM workshop WHERE number = 1")
    response = action(
        admin_client, app, "zoe.martin@example.org", "deplacement", workshop=target, confirm="y"
    )
    page = flashed(admin_client, response)
    assert "Zoé Martin est maintenant dans l'atelier 1." in page
    assert "La place libérée revient à la première personne en liste d'attente." in page
    assert count(app, WORKSHOP_OF, email="zoe.martin@example.org") == 1
    assert count(app, STATUS, email="zoe.martin@example.org") == "confirmed"
    assert count(app, STATUS, email="bruno.waiting@example.org") == "confirmed"
    assert count(app, SEATS, number=1) == 2 and count(app, SEATS, number=3) == 1
    assert_seats_match_confirmed(app)
    # The first confirmation, still queued, named the old workshop: the new one replaces it.
    assert count(app, MAILS, email="zoe.martin@example.org", kind="confirmation") == 1
    newest = count(
        app,
        "SELECT body_text FROM outbox_message WHERE recipient = :email ORDER BY id DESC LIMIT 1",
        email="zoe.martin@example.org",
    )
    assert "Atelier 1 : Jardins partagés" in as_read(newest)
    assert "Les organisateurs ont changé votre atelier" in as_read(newest)
    assert count(app, MAILS, email="bruno.waiting@example.org", kind="promoted") == 1
    moved = count(app, "SELECT summary FROM audit_entry WHERE action = 'registration.moved'")
    assert moved == "Zoé Martin: workshop 3 → 1"


def test_moving_a_seated_person_to_a_full_workshop_is_refused_and_changes_nothing(
    app, admin_client, people
):
    full = count(app, "SELECT id FROM workshop WHERE number = 3")
    response = action(
        admin_client, app, "awa.diallo@example.org", "deplacement", workshop=full, confirm="y"
    )
    assert response.status_code == 409
    assert "L'atelier 3 est complet : rien n'a changé." in readable(response)
    assert count(app, WORKSHOP_OF, email="awa.diallo@example.org") == 1
    assert count(app, SEATS, number=1) == 1 and count(app, CAPACITY, number=3) == 1
    assert count(app, AUDIT, action="registration.moved") == 0
    assert_seats_match_confirmed(app)


def test_overriding_the_capacity_moves_a_seated_person_into_a_full_workshop(
    app, admin_client, people
):
    full = count(app, "SELECT id FROM workshop WHERE number = 3")
    response = action(
        admin_client,
        app,
        "awa.diallo@example.org",
        "deplacement",
        workshop=full,
        override_capacity="y",
        confirm="y",
    )
    page = flashed(admin_client, response)
    assert "Awa Diallo est maintenant dans l'atelier 3. Sa capacité passe à 2 places." in page
    assert count(app, CAPACITY, number=3) == 2 and count(app, SEATS, number=3) == 2
    assert count(app, STATUS, email="bruno.waiting@example.org") == "waitlisted"
    assert count(app, AUDIT, action="workshop.capacity_changed") == 1
    assert_seats_match_confirmed(app)


def test_a_waiting_person_moved_gets_a_free_seat_or_the_end_of_the_list(
    app, client, admin_client, people
):
    seat_free = count(app, "SELECT id FROM workshop WHERE number = 2")
    response = action(
        admin_client,
        app,
        "bruno.waiting@example.org",
        "deplacement",
        workshop=seat_free,
        confirm="y",
    )
    assert "Bruno Peeters est maintenant dans l'atelier 2." in flashed(admin_client, response)
    assert count(app, STATUS, email="bruno.waiting@example.org") == "confirmed"
    assert count(app, SEATS, number=2) == 2 and count(app, SEATS, number=3) == 1

    register(client, "first.waiting@example.org", "3")
    register(client, "last.seat@example.org", "2")
    register(client, "later@example.org", "2")
    assert count(app, STATUS, email="later@example.org") == "waitlisted"
    full = count(app, "SELECT id FROM workshop WHERE number = 3")
    response = action(
        admin_client, app, "later@example.org", "deplacement", workshop=full, confirm="y"
    )
    page = flashed(admin_client, response)
    assert "sur la liste d'attente de l'atelier 3, en position 2." in page
    assert count(app, STATUS, email="later@example.org") == "waitlisted"
    assert count(app, MAILS, email="later@example.org", kind="waitlisted") == 1
    assert_seats_match_confirmed(app)


def test_moving_needs_the_box_ticked_and_a_workshop_of_the_event(app, admin_client, people):
    unticked = action(admin_client, app, "awa.diallo@example.org", "deplacement", workshop=2)
    assert unticked.status_code == 422
    assert "Cochez la case pour confirmer le changement d'atelier." in readable(unticked)
    for workshop in ("999", "abc", ""):
        response = action(
            admin_client,
            app,
            "awa.diallo@example.org",
            "deplacement",
            workshop=workshop,
            confirm="y",
        )
        assert response.status_code == 422
        assert "Choisissez l'atelier de destination." in readable(response)
    assert count(app, WORKSHOP_OF, email="awa.diallo@example.org") == 1


def test_a_second_move_to_the_same_workshop_changes_nothing(app, admin_client, people):
    target = count(app, "SELECT id FROM workshop WHERE number = 2")
    for _ in range(2):
        response = action(
            admin_client, app, "awa.diallo@example.org", "deplacement", workshop=target, confirm="y"
        )
        assert response.status_code in (303, 422)
    assert count(app, AUDIT, action="registration.moved") == 1
    assert count(app, SEATS, number=2) == 2
    assert_seats_match_confirmed(app)


def test_an_htmx_move_redirects_and_an_invalid_one_gets_its_form_back(app, admin_client, people):
    target = count(app, "SELECT id FROM workshop WHERE number = 2")
    htmx = {"HX-Request": "true"}
    invalid = action(
        admin_client, app, "awa.diallo@example.org", "deplacement", headers=htmx, workshop=target
    )
    assert invalid.status_code == 422
    body = invalid.get_data(as_text=True)
    assert body.lstrip().startswith('<form class="registration-action stack" id="move-action"')
    assert "<html" not in body
    done = action(
        admin_client,
        app,
        "awa.diallo@example.org",
        "deplacement",
        headers=htmx,
        workshop=target,
        confirm="y",
    )
    assert done.status_code == 200
    assert (
        done.headers["HX-Redirect"]
        == f"/admin/inscriptions/{registration_id(app, 'awa.diallo@example.org')}"
    )
    assert count(app, WORKSHOP_OF, email="awa.diallo@example.org") == 2


def test_resending_queues_the_message_of_the_current_status_once_per_click_burst(
    app, admin_client, people
):
    first = action(admin_client, app, "bruno.waiting@example.org", "renvoi")
    assert "L'e-mail est renvoyé à bruno.waiting@example.org." in flashed(admin_client, first)
    second = action(admin_client, app, "bruno.waiting@example.org", "renvoi")
    assert "vient d'être renvoyé" in flashed(admin_client, second)
    assert count(app, MAILS, email="bruno.waiting@example.org", kind="waitlisted") == 2
    assert count(app, AUDIT, action="registration.mail_resent") == 1
    action(admin_client, app, "awa.diallo@example.org", "renvoi")
    assert count(app, MAILS, email="awa.diallo@example.org", kind="confirmation") == 2


def test_correcting_the_details_records_before_and_after(app, admin_client, people):
    response = action(
        admin_client,
        app,
        "awa.diallo@example.org",
        "modification",
        first_name=" Awa-Marie ",
        last_name="Diallo",
        organisation="",
        lunch="no",
        dietary="Végétarienne",
    )
    assert "Les données de Awa-Marie Diallo sont corrigées." in flashed(admin_client, response)
    with app.app_context():
        awa = db.session.query(Registration).filter_by(email="awa.diallo@example.org").one()
        assert (awa.first_name, awa.organisation, awa.lunch, awa.dietary) == (
            "Awa-Marie",
            None,
            False,
            "Végétarienne",
        )
    before = count(app, "SELECT before FROM audit_entry WHERE action = 'registration.updated'")
    after = count(app, "SELECT after FROM audit_entry WHERE action = 'registration.updated'")
    if isinstance(before, str):  # SQLite gives the JSON text
        import json

        before, after = json.loads(before), json.loads(after)
    assert before == {
        "first_name": "Awa",
        "organisation": "ASBL Quartiers",
        "lunch": True,
        "dietary": None,
    }
    assert after["first_name"] == "Awa-Marie" and after["lunch"] is False
    same = action(
        admin_client,
        app,
        "awa.diallo@example.org",
        "modification",
        first_name="Awa-Marie",
        last_name="Diallo",
        lunch="no",
        dietary="Végétarienne",
    )
    assert "aucune donnée n'a changé" in flashed(admin_client, same)
    assert count(app, AUDIT, action="registration.updated") == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("first_name", "", "Indiquez votre prénom."),
        ("last_name", "x" * 101, "100 caractères au maximum."),
        ("organisation", "Evil\r\nBcc: x@y", "Ce champ contient des caractères non autorisés."),
        ("first_name", "A\x00", "Ce champ contient des caractères non autorisés."),
        ("dietary", "\u202egluten", "Ce champ contient des caractères non autorisés."),
        ("lunch", "maybe", "Dites-nous si vous prenez le lunch."),
    ],
)
def test_corrections_have_the_registration_forms_limits(
    app, admin_client, people, field, value, message
):
    data = {"first_name": "Awa", "last_name": "Diallo", "lunch": "yes", field: value}
    response = action(admin_client, app, "awa.diallo@example.org", "modification", **data)
    assert response.status_code == 422
    assert message in readable(response)
    assert count(app, AUDIT, action="registration.updated") == 0


def test_organisers_see_the_detail_without_actions_and_get_403_on_each(
    app, organiser_client, people
):
    page = detail(organiser_client, app, "awa.diallo@example.org")
    assert page.status_code == 200
    assert "Changer d'atelier" not in readable(page) and "/annulation" not in page.get_data(
        as_text=True
    )
    target = count(app, "SELECT id FROM workshop WHERE number = 2")
    for name, data in [
        ("annulation", {"confirm": "y"}),
        ("deplacement", {"workshop": target, "confirm": "y"}),
        ("renvoi", {}),
        ("modification", {"first_name": "X", "last_name": "Y", "lunch": "no"}),
    ]:
        assert (
            action(organiser_client, app, "awa.diallo@example.org", name, **data).status_code == 403
        )
    assert count(app, STATUS, email="awa.diallo@example.org") == "confirmed"
    assert (
        count(
            app,
            "SELECT count(*) FROM audit_entry WHERE action LIKE 'registration.%' "
            "AND action != 'registration.created'",
        )
        == 0
    )


def csrf_token(page) -> str:
    return re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    ).group(1)


def test_every_action_needs_its_csrf_token(app, make_user, people):
    app.config["WTF_CSRF_ENABLED"] = True  # after `people` registered through the public form
    admin = app.test_client()
    login = {"email": make_user("admin@atelier.test", "admin"), "password": PASSWORD}
    login["csrf_token"] = csrf_token(admin.get("/admin/login"))
    assert admin.post("/admin/login", data=login).status_code == 303
    awa = registration_id(app, "awa.diallo@example.org")
    for name in ("annulation", "deplacement", "renvoi", "modification"):
        response = admin.post(f"/admin/inscriptions/{awa}/{name}", data={"confirm": "y"})
        assert response.status_code == 400, name
    token = csrf_token(admin.get(f"/admin/inscriptions/{awa}"))
    response = admin.post(
        f"/admin/inscriptions/{awa}/annulation", data={"confirm": "y", "csrf_token": token}
    )
    assert response.status_code == 303
    assert count(app, STATUS, email="awa.diallo@example.org") == "cancelled"


def test_concurrent_moves_and_cancels_of_one_person_never_miscount_seats(app, people):
    """Admins clicking at the same moment: the registration's row lock makes each action see
    what the one before it left, so a seat is freed or taken once."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from webapp.audit import SYSTEM
    from webapp.registration import (
        AlreadyInWorkshopError,
        NothingToCancelError,
        RegistrationCancelledError,
        cancel_registration,
        move_registration,
    )

    start = Barrier(6)

    def act(kind: str) -> str:
        with app.app_context():
            zoe = db.session.query(Registration).filter_by(email="zoe.martin@example.org").one()
            target = db.session.query(Workshop).filter_by(number=1).one()
            db.session.rollback()  # ends the read: SQLite's BEGIN IMMEDIATE would hold the lock
            start.wait()
            try:
                if kind == "move":
                    move_registration(db.session, SYSTEM, zoe, target)
                else:
                    cancel_registration(db.session, zoe, SYSTEM)
                db.session.commit()
                return kind
            except (AlreadyInWorkshopError, NothingToCancelError, RegistrationCancelledError):
                db.session.rollback()
                return "nothing"
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(act, ["move", "cancel"] * 3))

    assert outcomes.count("cancel") == 1 and outcomes.count("move") <= 1
    assert count(app, STATUS, email="zoe.martin@example.org") == "cancelled"
    # Zoé's seat in workshop 3, wherever she was, went to Bruno.
    assert count(app, STATUS, email="bruno.waiting@example.org") == "confirmed"
    assert_seats_match_confirmed(app)
