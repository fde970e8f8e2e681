"""The audit log page: what happened, who did it, when, before and after; filters and pages."""

import html
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from conftest import count, readable, registration_form
from test_admin_users import account_form, logged_in_with_csrf, page_token, shown

from webapp import audit
from webapp.admin.audit_log import ACTION_LABELS
from webapp.extensions import db
from webapp.models import Event


def rows(response) -> list[str]:
    """The log's rows, each as the words a reader sees."""
    body = response.get_data(as_text=True)
    table = body[body.index("<tbody>") : body.index("</tbody>")] if "<tbody>" in body else ""
    return [
        " ".join(re.sub(r"<[^>]+>", " ", readable_html(row)).split())
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
    ]


def readable_html(text: str) -> str:
    return html.unescape(text).replace("\u00a0", " ")


def registration_id(app, email: str) -> int:
    return count(app, "SELECT id FROM registration WHERE email = :email", email=email)


@pytest.fixture
def history(app, client, runner, admin_client, event):
    """A registration, a waiting one, a cancellation that promotes the waiting one, and an
    account created in the dashboard, all through the paths people use."""
    first = registration_form(workshop="3", email="awa@example.org")
    assert client.post("/inscription", data=first).status_code == 303
    waiting = registration_form(
        workshop="3", email="jo@example.org", first_name="Jo", last_name="Martin"
    )
    assert client.post("/inscription", data=waiting).status_code == 303
    cancelled = runner.invoke(args=["registrations", "cancel", "awa@example.org"])
    assert cancelled.exit_code == 0, cancelled.output
    assert admin_client.post("/admin/comptes", data=account_form()).status_code == 303


def test_the_log_shows_each_change_with_who_when_and_before_after(app, admin_client, history):
    page = admin_client.get("/admin/journal")
    assert page.status_code == 200
    entries = rows(page)
    created_account, promoted, cancelled, waiting, registered, loaded, login, admin_account = (
        entries
    )
    assert "admin@atelier.test (admin) Compte créé nouvelle.orga@atelier.test" in created_account
    assert "Adresse e-mail : — → nouvelle.orga@atelier.test" in created_account
    assert "Rôle : — → organisateur·rice" in created_account
    assert "Place obtenue depuis la liste d'attente Jo Martin" in promoted
    assert "Statut : liste d'attente → confirmée" in promoted
    assert re.search(r"Terminal \(\w+\) Annulation Awa Diallo, workshop 3", cancelled)
    assert "Statut : confirmée → annulée" in cancelled
    assert "La personne inscrite Inscription Jo Martin" in waiting
    assert "Statut : — → liste d'attente" in waiting and "Atelier : — → 3" in waiting
    assert "Statut : — → confirmée" in registered
    assert "Automatique Fichier de l'événement chargé colloque-test" in loaded
    assert "admin@atelier.test (admin) Connexion au tableau de bord" in login
    assert "Automatique Compte créé admin@atelier.test (admin)" in admin_account
    awa = registration_id(app, "awa@example.org")
    assert f'href="/admin/inscriptions/{awa}"' in page.get_data(as_text=True)


def test_times_are_shown_in_the_events_time_zone(app, admin_client, event):
    with app.app_context():
        audit.record(
            db.session,
            audit.SYSTEM,
            "mail.retried",
            "a test",
            event=db.session.get(Event, event),
            at=datetime(2026, 1, 15, 23, 30, tzinfo=UTC),
        )
        db.session.commit()
    text = shown(admin_client.get("/admin/journal?action=mail.retried"))
    assert "16 janv. 2026, 00:30 Automatique Nouvel essai d'envoi d'un e-mail a test" in text


def test_an_unknown_action_is_shown_as_it_is_stored(app, admin_client, event):
    with app.app_context():
        audit.record(db.session, audit.SYSTEM, "badge.printed", "42 badges")
        db.session.commit()
    assert "badge.printed 42 badges" in rows(admin_client.get("/admin/journal"))[0]


def test_filters_narrow_the_log(app, admin_client, history):
    cancellations = rows(admin_client.get("/admin/journal?action=registration.cancelled"))
    assert len(cancellations) == 1 and "Awa Diallo" in cancellations[0]
    from_terminal = rows(admin_client.get("/admin/journal?actor=cli:"))
    assert len(from_terminal) == 2  # the cancellation and the promotion it caused
    jo = registration_id(app, "jo@example.org")
    of_jo = rows(admin_client.get(f"/admin/journal?registration={jo}"))
    assert len(of_jo) == 2 and all("Jo Martin" in row for row in of_jo)
    both = rows(admin_client.get(f"/admin/journal?registration={jo}&actor=cli:&action="))
    assert len(both) == 1 and "Place obtenue depuis la liste d'attente" in both[0]
    none = admin_client.get("/admin/journal?action=user.created&actor=nobody")
    assert "Aucune entrée ne correspond à ces filtres." in readable(none)


def test_the_action_filter_offers_the_actions_in_the_log_by_their_label(admin_client, history):
    page = admin_client.get("/admin/journal").get_data(as_text=True)
    options = dict(re.findall(r'<option (?:selected )?value="([^"]*)">([^<]*)</option>', page))
    assert options["registration.promoted"] == "Place obtenue depuis la liste d&#39;attente"
    assert set(options) == {
        "",
        "registration.created",
        "registration.cancelled",
        "registration.promoted",
        "user.created",
        "user.login",
        "event.loaded",
    }


def test_another_events_entries_stay_out(app, admin_client, event, event_factory):
    earlier = (date.today() + timedelta(days=5)).isoformat()
    other = event_factory(event__slug="autre", event__date=earlier)
    with app.app_context():
        audit.record(
            db.session,
            audit.SYSTEM,
            "event.registration_closed",
            "autre",
            event=db.session.get(Event, other),
        )
        db.session.commit()
    assert "autre" not in " ".join(rows(admin_client.get("/admin/journal")))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("registration=abc", "Indiquez un numéro d'inscription (en chiffres)."),
        ("registration=99999999999999", "Indiquez un numéro d'inscription (en chiffres)."),
        ("action=nope", "Choisissez une action de la liste."),
        ("actor=a%00b", "Ce champ contient des caractères non autorisés."),
        ("actor=" + "x" * 400, "340 caractères au maximum."),
    ],
)
def test_garbage_filters_get_a_french_message_not_an_error(admin_client, event, query, message):
    response = admin_client.get(f"/admin/journal?{query}")
    assert response.status_code == 422
    assert message in readable(response)


@pytest.mark.parametrize(
    "query", ["page=abc", "page=-3", "page=99999999999999999999", "_external=1&_scheme=x", "x=%00"]
)
def test_garbage_pages_and_unknown_parameters_give_a_sane_page(admin_client, event, query):
    response = admin_client.get(f"/admin/journal?{query}")
    assert response.status_code == 200
    assert "3 entrées" in readable(response)  # the admin's account and login, the event's load


def test_the_log_comes_fifty_entries_a_page(app, admin_client, event):
    with app.app_context():
        for number in range(60):
            audit.record(db.session, audit.SYSTEM, "mail.retried", f"message {number}")
        db.session.commit()
    first = admin_client.get("/admin/journal?action=mail.retried")
    assert len(rows(first)) == 50
    assert "60 entrées · page 1 sur 2" in readable(first)
    assert rows(first)[0].endswith("message 59")
    link = re.search(r'href="([^"]+)" rel="next"', first.get_data(as_text=True)).group(1)
    assert link.replace("&amp;", "&") == "/admin/journal?page=2&action=mail.retried"
    second = admin_client.get("/admin/journal?action=mail.retried&page=2")
    assert len(rows(second)) == 10 and rows(second)[-1].endswith("message 0")
    assert 'rel="prev"' in second.get_data(as_text=True)
    beyond = admin_client.get("/admin/journal?action=mail.retried&page=7")
    assert rows(beyond) == rows(second)


def test_htmx_gets_only_the_results(admin_client, history):
    response = admin_client.get(
        "/admin/journal?action=user.created", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="audit-results"')
    assert "<h1>" not in body and len(rows(response)) == 2
    assert "HX-Request" in response.headers["Vary"]
    invalid = admin_client.get("/admin/journal?registration=x", headers={"HX-Request": "true"})
    assert invalid.status_code == 422
    assert "Indiquez un numéro d'inscription" in readable(invalid)


def test_organisers_read_the_log(organiser_client, history):
    response = organiser_client.get("/admin/journal")
    assert response.status_code == 200
    entries = rows(response)
    assert len(entries) == 10  # and the organiser's account and login
    login = "organiser@atelier.test (organisateur·rice) Connexion au tableau de bord"
    assert any(login in row for row in entries)


def test_with_csrf_on_an_action_without_its_token_leaves_no_trace(csrf_on, app, make_user, event):
    client = logged_in_with_csrf(app, make_user("admin@atelier.test", "admin"))
    assert client.post("/admin/comptes", data=account_form()).status_code == 400
    assert [
        row for row in rows(client.get("/admin/journal")) if "Compte créé nouvelle.orga" in row
    ] == []
    token = page_token(client, "/admin/comptes")
    assert client.post("/admin/comptes", data=account_form(csrf_token=token)).status_code == 303
    created = [
        row for row in rows(client.get("/admin/journal")) if "Compte créé nouvelle.orga" in row
    ]
    assert len(created) == 1 and "admin@atelier.test (admin)" in created[0]


def test_the_journal_names_every_action_the_application_records():
    assert set(ACTION_LABELS) == set(audit.AuditAction)
