"""Registrations are deleted some time after their event, as the privacy page says."""

from datetime import timedelta

from conftest import count, readable, registration_form

from webapp.extensions import db
from webapp.models import Event
from webapp.privacy import purge_expired_registrations


def test_registrations_and_their_mails_go_90_days_after_the_event(app, client, runner, event):
    client.post("/inscription", data=registration_form())
    client.post("/inscription", data=registration_form(email="other@example.org"))
    with app.app_context():
        ends = db.session.get(Event, event).ends_at
        assert purge_expired_registrations(db.session, 90, now=ends + timedelta(days=89)) == 0
        assert count(app, "SELECT count(*) FROM registration") == 2
        assert purge_expired_registrations(db.session, 90, now=ends + timedelta(days=90)) == 2
    assert count(app, "SELECT count(*) FROM registration") == 0
    assert count(app, "SELECT count(*) FROM outbox_message") == 0
    assert count(app, "SELECT count(*) FROM workshop") == 3


def test_purge_command_keeps_registrations_of_coming_events(app, client, runner, event):
    client.post("/inscription", data=registration_form())
    result = runner.invoke(args=["privacy", "purge"])
    assert result.exit_code == 0
    assert "0 registrations deleted" in result.output
    assert count(app, "SELECT count(*) FROM registration") == 1


def test_privacy_page_states_the_retention_in_days(client, event):
    page = readable(client.get("/confidentialite"))
    assert "Jusqu'à 90 jours après la journée" in page
