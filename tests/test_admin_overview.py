"""The overview: figures that match the database, catering, registrations per day in the event's
time zone, the outbox and its retry button, presence, and the htmx refresh."""

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import count, readable, shown_text, sign_up
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Event, Registration
from webapp.registration import Applicant, register
from webapp.statistics import registrations_per_day

WORKSHOPS = [
    {"number": 1, "title": "Cartographie", "description": "Des cartes.", "capacity": 2},
    {"number": 2, "title": "Compostage", "description": "Du compost.", "capacity": 4},
    {"number": 4, "title": "Réparation", "description": "Des vélos.", "capacity": 1},
]


def row_figures(response, number: int) -> list[int]:
    """A workshop's row of the seats table: capacity, confirmed, waiting, free."""
    page = response.get_data(as_text=True)
    row = re.search(
        rf'<tr>\s*<th scope="row"><a href="/admin/ateliers/{number}">.*?</tr>', page, re.S
    )
    return [int(cell) for cell in re.findall(r'<td class="number">(\d+)</td>', row.group(0))]


def total_figures(response) -> list[int]:
    footer = re.search(r"<tfoot>.*?</tfoot>", response.get_data(as_text=True), re.S).group(0)
    return [int(cell) for cell in re.findall(r'<td class="number">(\d+)</td>', footer)]


def test_the_figures_shown_are_those_of_the_database(app, client, admin_client, event_factory):
    event_factory(workshops=WORKSHOPS)
    for name in ("Ana", "Bea", "Cy"):
        sign_up(client, name, 1)
    sign_up(client, "Dan", 2)
    for name in ("Eva", "Fil"):
        sign_up(client, name, 4)

    response = admin_client.get("/admin/")
    assert response.status_code == 200
    for number in (1, 2, 4):
        confirmed = count(
            app,
            "SELECT count(*) FROM registration r JOIN workshop w ON w.id = r.workshop_id "
            "WHERE w.number = :n AND r.status = 'confirmed'",
            n=number,
        )
        waiting = count(
            app,
            "SELECT count(*) FROM registration r JOIN workshop w ON w.id = r.workshop_id "
            "WHERE w.number = :n AND r.status = 'waitlisted'",
            n=number,
        )
        capacity = count(app, "SELECT capacity FROM workshop WHERE number = :n", n=number)
        assert row_figures(response, number) == [capacity, confirmed, waiting, capacity - confirmed]
    assert row_figures(response, 1) == [2, 2, 1, 0]
    assert row_figures(response, 4) == [1, 1, 1, 0]
    assert total_figures(response) == [7, 4, 2, 3]
    text = readable(response)
    assert "4 participant·e·s inscrit·e·s, 2 en attente, 3 places libres sur 7." in text
    # The bars are drawn with attributes, never with style (the CSP forbids inline styles).
    assert '<rect class="seat-bar__taken" x="0" y="0" width="2"' in response.get_data(as_text=True)
    assert "style=" not in response.get_data(as_text=True)


def test_the_caterer_sees_the_lunch_count_and_every_dietary_need(client, admin_client, event):
    sign_up(client, "Ana", 1, lunch="yes", dietary="végétarien")
    sign_up(client, "Bea", 2, lunch="yes")
    sign_up(client, "Cy", 2, lunch="no")
    sign_up(client, "Dan", 3, lunch="yes", dietary="sans gluten")
    sign_up(client, "Eva", 3, lunch="yes", dietary="halal")  # waiting: not fed

    text = shown_text(admin_client.get("/admin/"))
    assert re.search(r"3\s+repas à prévoir", text)
    assert re.search(r"végétarien\s+Ana Test\s+1", text)
    assert re.search(r"sans gluten\s+Dan Test\s+3", text)
    assert "halal" not in text


def test_without_lunch_the_count_is_hidden_but_dietary_needs_are_listed(
    client, admin_client, event_factory
):
    event_factory(event__lunch=False, workshops=WORKSHOPS)
    sign_up(client, "Ana", 2, lunch=None, dietary="allergie aux noix")
    text = shown_text(admin_client.get("/admin/"))
    assert "repas à prévoir" not in text
    assert "Cette journée ne propose pas de repas." in text
    assert re.search(r"allergie aux noix\s+Ana Test\s+2", text)


def last_summer_day() -> date:
    """A 1 July already past, when Brussels is at UTC+2."""
    today = date.today()
    year = today.year if today > date(today.year, 7, 3) else today.year - 1
    return date(year, 7, 1)


def applicant(name: str) -> Applicant:
    return Applicant(name, "Test", f"{name}@example.org", None, 2, False, None, "fr")


def test_registrations_are_counted_per_day_of_the_events_time_zone(app, admin_client, event):
    july = last_summer_day()
    january = date(july.year, 1, 10)
    moments = {
        "winter": datetime(july.year, 1, 10, 23, 30, tzinfo=UTC),  # 11 January, 0h30 in Brussels
        "evening": datetime(july.year, 7, 1, 21, 30, tzinfo=UTC),  # 1 July, 23h30
        "late": datetime(july.year, 7, 1, 23, 30, tzinfo=UTC),  # 2 July, 1h30
        "morning": datetime(july.year, 7, 2, 8, 0, tzinfo=UTC),  # 2 July, 10h
    }
    with app.app_context():
        stored = db.session.get(Event, event)
        for name, moment in moments.items():
            register(db.session, stored, applicant(name), now=moment)
        db.session.commit()
        days = {d.day: d.registrations for d in registrations_per_day(db.session, stored)}

    assert january not in days  # the first registration is on the 11th in Brussels
    assert days[january + timedelta(days=2)] == 0
    assert days[january + timedelta(days=1)] == 1
    assert days[july] == 1
    assert days[july + timedelta(days=1)] == 2
    assert sum(days.values()) == 4
    assert min(days) == january + timedelta(days=1)
    assert len(days) == (max(days) - min(days)).days + 1  # every day, even without a registration

    page = admin_client.get("/admin/").get_data(as_text=True)
    assert re.search(
        rf'<time datetime="{(july + timedelta(days=1)).isoformat()}">[^<]*</time></th>'
        r'<td class="number">2</td>',
        page,
    )
    assert '<title id="days-chart-title">' in page and "<desc" in page


# The SMTP server comes before the app, whose settings point to it.
@pytest.fixture
def failed_message(smtp, app, client, runner, event):
    """A confirmation refused for good (550) by the SMTP server."""
    smtp.handler.refused_recipients["ana@example.org"] = "550 5.1.1 No such user here"
    sign_up(client, "Ana", 1)
    assert runner.invoke(args=["mail", "send-due"]).exit_code == 1
    smtp.handler.refused_recipients.clear()
    return count(app, "SELECT id FROM outbox_message WHERE state = 'failed'")


def test_a_failed_message_is_retried_and_the_worker_then_sends_it(
    smtp, app, runner, organiser_client, failed_message
):
    page = organiser_client.get("/admin/")
    text = shown_text(page)
    assert "1 en échec" in text
    assert "550 5.1.1 No such user here" in text
    action = f"/admin/messages/{failed_message}/renvoyer"
    assert f'action="{action}"' in page.get_data(as_text=True)

    response = organiser_client.post(action)
    assert response.status_code == 303
    assert "est de nouveau dans la file" in shown_text(organiser_client.get("/admin/"))
    assert count(app, "SELECT state FROM outbox_message WHERE id = :i", i=failed_message) == (
        "queued"
    )
    assert count(app, "SELECT attempts FROM outbox_message WHERE id = :i", i=failed_message) == 1
    assert (
        count(
            app,
            "SELECT count(*) FROM audit_entry WHERE action = 'mail.retried' "
            "AND actor = 'organiser:organiser@atelier.test'",
        )
        == 1
    )

    assert runner.invoke(args=["mail", "send-due"]).exit_code == 0
    assert len(smtp.handler.to("ana@example.org")) == 1
    assert count(app, "SELECT state FROM outbox_message WHERE id = :i", i=failed_message) == "sent"


def test_a_message_that_is_not_failed_is_not_retried(smtp, app, admin_client, failed_message):
    assert admin_client.post(f"/admin/messages/{failed_message}/renvoyer").status_code == 303
    again = admin_client.post(f"/admin/messages/{failed_message}/renvoyer")
    assert again.status_code == 409
    assert "Ce message n'est pas en échec (en attente d'envoi)" in readable(again)
    assert count(app, "SELECT count(*) FROM audit_entry WHERE action = 'mail.retried'") == 1
    assert admin_client.post("/admin/messages/999999/renvoyer").status_code == 404


def test_another_events_failed_messages_are_neither_shown_nor_retried(
    smtp, app, organiser_client, event_factory, failed_message
):
    later = (date.today() + timedelta(days=60)).isoformat()
    event_factory(event__slug="edition-suivante", event__date=later)  # now the site's event
    text = shown_text(organiser_client.get("/admin/"))
    assert "550 5.1.1 No such user here" not in text
    assert "1 en échec" not in text
    assert organiser_client.post(f"/admin/messages/{failed_message}/renvoyer").status_code == 404
    assert count(app, "SELECT state FROM outbox_message WHERE id = :i", i=failed_message) == (
        "failed"
    )


def test_the_htmx_refresh_returns_only_the_figures_and_nothing_when_unchanged(
    client, admin_client, event
):
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert 'hx-trigger="every 12s"' in page
    poll = re.search(r'hx-get="(/admin/\?shown=[^"]*)"', page).group(1)

    first = admin_client.get(poll, headers={"HX-Request": "true"})
    assert first.status_code == 200
    assert "HX-Request" in first.headers["Vary"]
    body = first.get_data(as_text=True)
    assert body.lstrip().startswith('<p id="overview-summary"')
    assert "<h1" not in body and "<html" not in body and "E-mails en échec" not in body
    assert 'aria-live="polite"' in body

    shown = re.search(r'hx-get="(/admin/\?shown=[^"]*)"', body).group(1)
    unchanged = admin_client.get(shown, headers={"HX-Request": "true"})
    assert unchanged.status_code == 204

    sign_up(client, "Ana", 1)
    changed = admin_client.get(shown, headers={"HX-Request": "true"})
    assert changed.status_code == 200
    assert "1 participant·e·s inscrit·e·s" in readable(changed)


def test_presence_shows_once_someone_is_checked_in(app, client, admin_client, event):
    sign_up(client, "Ana", 1)
    sign_up(client, "Bea", 2)
    assert "Présences" not in shown_text(admin_client.get("/admin/"))
    with app.app_context():
        ana = db.session.scalar(select(Registration).where(Registration.first_name == "Ana"))
        ana.checked_in_at = datetime.now(UTC)
        db.session.commit()
    text = shown_text(admin_client.get("/admin/"))
    assert re.search(r"Présences\s+1\s+présent·e·s\s+1\s+absent·e·s\s+2\s+inscrit·e·s", text)


def test_presence_shows_on_the_event_day(client, admin_client, event_factory):
    today = datetime.now(ZoneInfo("Europe/Brussels")).date()
    event_factory(event__date=today.isoformat(), event__starts="00:00", event__ends="23:59")
    assert "Présences 0 présent·e·s" in shown_text(admin_client.get("/admin/"))
