"""Registrations are deleted some time after their event, as the privacy page says."""

from datetime import date, timedelta

import tomli_w
from conftest import count, event_data, readable, registration_form

from webapp.database import utcnow
from webapp.extensions import db
from webapp.models import Event, Registration, RegistrationStatus
from webapp.privacy import purge_expired_registrations


def test_registrations_and_their_mails_go_90_days_after_the_event(
    app, client, event, event_factory
):
    client.post("/inscription", data=registration_form())
    client.post("/inscription", data=registration_form(email="other@example.org"))
    later = date.today() + timedelta(days=200)
    next_edition = event_factory(event__slug="edition-suivante", event__date=later.isoformat())
    with app.app_context():
        db.session.add(registered(db.session.get(Event, next_edition)))
        db.session.commit()
        ends = db.session.get(Event, event).ends_at
        assert purge_expired_registrations(db.session, 90, now=ends + timedelta(days=89)) == {}
        db.session.commit()  # the caller commits (on SQLite the transaction holds the lock)
        assert count(app, "SELECT count(*) FROM registration") == 3
        assert purge_expired_registrations(db.session, 90, now=ends + timedelta(days=90)) == {
            "colloque-test": 2
        }
        db.session.commit()
    assert count(app, "SELECT count(*) FROM registration") == 1  # the next edition's
    assert count(app, "SELECT count(*) FROM outbox_message") == 0
    # The log named them ("Awa Diallo, workshop 1"): their entries go too.
    assert count(app, "SELECT count(*) FROM audit_entry WHERE summary LIKE '%Diallo%'") == 0
    purged = "SELECT summary FROM audit_entry WHERE action = 'event.purged'"
    assert count(app, purged) == "colloque-test: 2 registrations deleted"
    assert count(app, "SELECT count(*) FROM workshop") == 6


def registered(event: Event) -> Registration:
    return Registration(
        event=event,
        workshop=event.workshops[0],
        first_name="Zoé",
        last_name="Suivante",
        email="zoe@example.org",
        email_normalised="zoe@example.org",
        status=RegistrationStatus.CONFIRMED,
        lunch=False,
        language="fr",
        consent_at=utcnow(),
        manage_token="next-edition",
    )


def test_an_event_moved_back_in_time_by_mistake_keeps_its_registrations(
    app, client, runner, event, tmp_path
):
    client.post("/inscription", data=registration_form())
    mistaken = event_data(event__date="2020-01-15")
    path = tmp_path / "mistake.toml"
    path.write_bytes(tomli_w.dumps(mistaken).encode())
    assert runner.invoke(args=["event", "load", str(path)]).exit_code == 0
    result = runner.invoke(args=["privacy", "purge"])
    assert "colloque-test: 0 registrations deleted (ended more than 90 days ago)" in result.output
    assert count(app, "SELECT count(*) FROM registration") == 1


def test_purge_command_keeps_registrations_of_coming_events(app, client, runner, event):
    client.post("/inscription", data=registration_form())
    result = runner.invoke(args=["privacy", "purge"])
    assert result.exit_code == 0
    assert "0 registrations deleted" in result.output
    assert count(app, "SELECT count(*) FROM registration") == 1


def test_privacy_page_states_the_retention_in_days(client, event):
    page = readable(client.get("/confidentialite"))
    assert "Jusqu'à 90 jours après la journée" in page
