"""E-mail: the outbox, the mail job, failures, workers, reminders, against a real SMTP server."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import time_machine
from conftest import count, mail_body, readable, registration_form

from webapp.database import utcnow
from webapp.extensions import db
from webapp.mail_job import run_once, send_due
from webapp.models import Registration
from webapp.reminders import queue_due_reminders, send_reminder_mailing

ROOT = Path(__file__).resolve().parent.parent
BRUSSELS = ZoneInfo("Europe/Brussels")


def register(client, **changes):
    response = client.post("/inscription", data=registration_form(**changes))
    assert response.status_code == 303, readable(response)


def send_due_now(runner, *, all_delivered=True):
    """`mail send-due`, which exits with 1 when a message could not be sent in this pass."""
    result = runner.invoke(args=["mail", "send-due"])
    assert result.exit_code == (0 if all_delivered else 1), result.output
    return result.output


def test_confirmation_reaches_the_participant_with_ics_and_management_link(
    smtp, app, client, runner, event
):
    register(client)
    output = send_due_now(runner)
    assert "All events: queued: 0, sending: 0, sent: 1, failed: 0" in output
    [message] = smtp.messages
    assert message["To"] == "awa.diallo@example.org"
    assert message["Subject"] == "Inscription confirmée : Colloque sur les communs urbains"
    assert message["Reply-To"] == "orga@colloque.test"
    assert message["Message-ID"]
    text = mail_body(message)
    html = mail_body(message, "html")
    assert text.startswith("Bonjour Awa,") and "Bonjour Awa," in html
    assert "Atelier 1 : Jardins partagés" in text
    assert "Maison des associations, Rue de l'Exemple 12, 4000 Liège" in text
    assert "Lunch : Oui" in text

    # Beside the QR code's inline image (tests/test_admin_checkin.py).
    [attachment] = [a for a in message.iter_attachments() if a.get_content_type() != "image/png"]
    assert attachment.get_content_type() == "text/calendar"
    calendar = icalendar.Calendar.from_ical(attachment.get_content())
    [entry] = calendar.walk("VEVENT")
    with app.app_context():
        registration = db.session.query(Registration).one()
        day = registration.event.date
    assert entry.decoded("dtstart") == datetime(
        day.year, day.month, day.day, 9, 30, tzinfo=BRUSSELS
    )
    assert entry.decoded("dtend") == datetime(day.year, day.month, day.day, 17, 0, tzinfo=BRUSSELS)
    assert entry.decoded("dtstart").tzinfo.key == "Europe/Brussels"
    assert "Maison des associations" in str(entry["location"])
    assert "Jardins partagés" in str(entry["description"])
    assert str(entry["uid"]).endswith("@atelier.test")

    link = re.search(r"http://atelier\.test(/inscription/[\w-]+)", text).group(1)
    page = client.get(link)
    assert page.status_code == 200
    assert "Mon inscription" in readable(page) and "Awa Diallo" in readable(page)
    assert "Confirmée" in readable(page)


def test_english_registration_gets_english_mail(smtp, app, client, runner, event):
    client.get("/langue/en?next=/")
    register(client)
    send_due_now(runner)
    [message] = smtp.messages
    assert message["Subject"] == "Registration confirmed: Colloque sur les communs urbains"
    text = mail_body(message)
    assert "Hello Awa," in text
    assert "Workshop 1: Jardins partagés" in text
    html = mail_body(message, "html")
    assert 'Workshop 1: <span lang="fr">Jardins partagés</span>' in html


def test_waitlisted_and_duplicate_addresses_get_their_own_mails(smtp, app, client, runner, event):
    register(client, workshop="3", email="first@example.org")
    register(client, workshop="3", email="second@example.org")
    register(client, email="SECOND@example.org ", workshop="1")
    send_due_now(runner)
    [waitlisted, link] = smtp.handler.to("second@example.org")
    assert waitlisted["Subject"].startswith("Liste d'attente")
    assert "position 1" in mail_body(waitlisted)
    assert not list(waitlisted.iter_attachments())
    assert link["Subject"].startswith("Votre inscription")
    link_text = mail_body(link)
    assert "/inscription/" in link_text
    assert "Liste d'attente, position 1" in link_text


def test_smtp_down_keeps_registrations_and_delivers_once_when_back(
    smtp, app, client, runner, event
):
    smtp.stop()
    for i in range(3):
        register(client, email=f"p{i}@example.org")
    send_due_now(runner, all_delivered=False)
    assert count(app, "SELECT count(*) FROM registration") == 3
    assert count(app, "SELECT count(*) FROM outbox_message WHERE state = 'queued'") == 3
    assert count(app, "SELECT count(*) FROM outbox_message WHERE attempts = 1") == 3
    smtp.start()
    with time_machine.travel(utcnow() + timedelta(minutes=2)):
        send_due_now(runner)
        send_due_now(runner)
    assert sorted(m["To"] for m in smtp.messages) == [f"p{i}@example.org" for i in range(3)]


def test_temporary_451_is_retried_with_backoff_until_accepted(smtp, app, client, runner, event):
    smtp.handler.data_reply = "451 4.3.0 Try again later"
    register(client)
    send_due_now(runner, all_delivered=False)
    send_due_now(runner)  # not due yet: the backoff holds it
    assert smtp.messages == []
    row = "SELECT attempts FROM outbox_message"
    assert count(app, row) == 1
    with time_machine.travel(utcnow() + timedelta(seconds=61)):
        send_due_now(runner, all_delivered=False)
    assert count(app, row) == 2
    smtp.handler.data_reply = None
    with time_machine.travel(utcnow() + timedelta(seconds=61 + 121)):
        send_due_now(runner)
    assert len(smtp.messages) == 1
    assert count(app, "SELECT count(*) FROM outbox_message WHERE state = 'sent'") == 1


def test_permanent_550_fails_that_message_and_keeps_the_reply(smtp, app, client, runner, event):
    smtp.handler.refused_recipients["nobody@example.org"] = "550 5.1.1 No such user here"
    register(client, email="nobody@example.org")
    register(client, email="somebody@example.org", workshop="2")
    output = send_due_now(runner, all_delivered=False)
    assert [m["To"] for m in smtp.messages] == ["somebody@example.org"]
    assert "failed: 1" in output and "550 5.1.1 No such user here" in output
    status = runner.invoke(args=["mail", "status"]).output
    assert "nobody@example.org" in status and "550 5.1.1 No such user here" in status


def test_connection_dropped_during_data_is_retried_with_the_same_message_id(
    smtp, app, client, runner, event
):
    smtp.handler.drop_connection = True
    register(client)
    send_due_now(runner, all_delivered=False)
    assert count(app, "SELECT count(*) FROM outbox_message WHERE state = 'queued'") == 1
    smtp.handler.drop_connection = False
    with time_machine.travel(utcnow() + timedelta(minutes=2)):
        send_due_now(runner)
    with app.app_context():
        stored = db.session.execute(db.text("SELECT message_id FROM outbox_message")).scalar()
    assert [m["Message-ID"] for m in smtp.messages] == [stored]


def _queue_many(app, number: int, event_id: int):
    """Registers `number` people (the first ones get seats, the rest wait): one e-mail each."""
    from webapp import registration as registrations
    from webapp.models import Event

    with app.app_context():
        event = db.session.get(Event, event_id)
        for i in range(number):
            applicant = registrations.Applicant(
                first_name="P",
                last_name=str(i),
                email=f"bulk{i}@example.org",
                organisation=None,
                workshop_number=1,
                lunch=False,
                dietary=None,
                language="fr",
            )
            registrations.register(db.session, event, applicant)
            db.session.commit()


def test_two_workers_deliver_each_of_500_messages_exactly_once(smtp, app, event, config_overrides):
    app.config["MAIL_BATCH_SIZE"] = 50
    _queue_many(app, 500, event)
    workers = [threading.Thread(target=send_due, args=(app,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    recipients = [m["To"] for m in smtp.messages]
    assert len(recipients) == 500
    assert len(set(recipients)) == 500
    assert count(app, "SELECT count(*) FROM outbox_message WHERE state = 'sent'") == 500


def test_worker_killed_mid_batch_delivers_everything_after_the_lease(
    smtp, app, event, db_url, tmp_path
):
    batch = 20
    _queue_many(app, 60, event)
    received_before_kill = threading.Event()

    original = smtp.handler.handle_DATA

    async def slow_data(server, session, envelope):
        import asyncio

        await asyncio.sleep(0.05)
        reply = await original(server, session, envelope)
        if len(smtp.messages) >= 30:
            received_before_kill.set()
        return reply

    smtp.handler.handle_DATA = slow_data
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp.port),
        "MAIL_BATCH_SIZE": str(batch),
        "MAIL_LEASE_SECONDS": "2",
        "MAIL_SEND_INTERVAL_SECONDS": "1",
        "SECRET_KEY": "worker-test",
        "PUBLIC_URL": "http://atelier.test",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "mail", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert received_before_kill.wait(timeout=60)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    smtp.handler.handle_DATA = original
    assert count(app, "SELECT count(*) FROM outbox_message WHERE state = 'sent'") < 60
    time.sleep(2.5)  # the dead worker's lease runs out
    app.config["MAIL_LEASE_SECONDS"] = 2
    run_once(app)
    by_recipient: dict[str, set[str]] = {}
    for message in smtp.messages:
        by_recipient.setdefault(message["To"], set()).add(message["Message-ID"])
    assert len(by_recipient) == 60
    assert all(len(ids) == 1 for ids in by_recipient.values())  # duplicates share the ID
    duplicates = len(smtp.messages) - 60
    assert duplicates <= batch
    assert count(app, "SELECT count(*) FROM outbox_message WHERE state = 'sent'") == 60


def slow_down(smtp, seconds: float):
    """Makes the SMTP server take `seconds` to accept each message."""
    accept = smtp.handler.handle_DATA

    async def slowly(server, session, envelope):
        import asyncio

        await asyncio.sleep(seconds)
        return await accept(server, session, envelope)

    smtp.handler.handle_DATA = slowly


def test_sigterm_finishes_the_message_in_hand_and_gives_back_the_rest(smtp, app, event, db_url):
    _queue_many(app, 30, event)
    slow_down(smtp, 0.2)
    env = {**os.environ, "DATABASE_URL": db_url, "MAIL_PORT": str(smtp.port), "SECRET_KEY": "x"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "mail", "worker"], cwd=ROOT, env=env
    )
    deadline = time.monotonic() + 60
    while len(smtp.messages) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    delivered = len(smtp.messages)
    assert 3 <= delivered < 30
    assert count(app, "SELECT count(*) FROM outbox_message WHERE state = 'sent'") == delivered
    assert (
        count(app, "SELECT count(*) FROM outbox_message WHERE state = 'queued'") == 30 - delivered
    )
    run_once(app)
    assert sorted(m["To"] for m in smtp.messages) == sorted(
        f"bulk{i}@example.org" for i in range(30)
    )


def test_a_slow_relay_does_not_let_a_second_worker_resend_a_batch(smtp, app, event):
    """The lease is shorter than the batch takes: the first worker renews it as it goes."""
    app.config.update(MAIL_LEASE_SECONDS=3, MAIL_BATCH_SIZE=20)
    _queue_many(app, 20, event)
    slow_down(smtp, 0.3)  # the batch takes 6 s
    first = threading.Thread(target=send_due, args=(app,))
    first.start()
    time.sleep(3.5)  # past the first lease: only a renewal keeps the batch
    send_due(app)
    first.join(timeout=60)
    recipients = [m["To"] for m in smtp.messages]
    assert sorted(recipients) == sorted(f"bulk{i}@example.org" for i in range(20))
    assert count(app, "SELECT count(*) FROM outbox_message WHERE state = 'sent'") == 20


def test_an_unsendable_message_fails_alone_and_does_not_block_the_queue(
    smtp, app, client, runner, event
):
    register(client, email="first@example.org")
    register(client, email="second@example.org", workshop="2")
    with app.app_context():
        # An address smtplib cannot encode, as older data or another client might hold.
        db.session.execute(
            db.text("UPDATE outbox_message SET recipient = 'jöhn@example.org' WHERE id = 1")
        )
        db.session.commit()
    output = send_due_now(runner, all_delivered=False)
    assert [m["To"] for m in smtp.messages] == ["second@example.org"]
    assert "failed: 1" in output and "not sendable" in output


def _reminder_time(app, event_id):
    from webapp.models import Event
    from webapp.reminders import reminder_moment

    with app.app_context():
        return reminder_moment(db.session.get(Event, event_id))


def test_automatic_reminder_goes_once_to_each_confirmed_registration(smtp, app, client, event):
    register(client, email="confirmed@example.org")
    register(client, email="other@example.org", workshop="3")
    register(client, email="waiting@example.org", workshop="3")
    register(client, email="cancelled@example.org", workshop="2")
    with app.app_context():
        db.session.execute(
            db.text("UPDATE registration SET status = 'cancelled' WHERE email = :e"),
            {"e": "cancelled@example.org"},
        )
        db.session.commit()
    moment = _reminder_time(app, event)
    with app.app_context():
        with time_machine.travel(moment - timedelta(minutes=1)):
            assert queue_due_reminders(db.session) == 0
        with time_machine.travel(moment + timedelta(hours=5)):  # the job was down a while
            assert queue_due_reminders(db.session) == 2
            assert queue_due_reminders(db.session) == 0
            db.session.commit()
            run_once(app)
    reminders = [m for m in smtp.messages if m["Subject"].startswith("Rappel")]
    assert sorted(m["To"] for m in reminders) == ["confirmed@example.org", "other@example.org"]
    text = mail_body(reminders[0])
    assert "Annulez votre inscription avec le lien ci-dessus" in text and "/inscription/" in text


def test_registration_after_the_reminder_time_gets_no_reminder(smtp, app, client, event):
    moment = _reminder_time(app, event)
    with time_machine.travel(moment + timedelta(hours=1)):
        register(client, email="late@example.org")
        with app.app_context():
            assert queue_due_reminders(db.session) == 0


def test_two_workers_queueing_reminders_at_once_queue_each_once(smtp, app, client, event):
    for i in range(10):
        register(client, email=f"p{i}@example.org", workshop=str(1 + i % 2))
    moment = _reminder_time(app, event)
    barrier = threading.Barrier(2)

    def queue():
        with app.app_context():
            barrier.wait()
            with time_machine.travel(moment + timedelta(minutes=1), tick=True):
                queue_due_reminders(db.session)
                db.session.commit()
            db.session.remove()

    threads = [threading.Thread(target=queue) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert count(app, "SELECT count(*) FROM outbox_message WHERE kind = 'reminder'") == 8


def test_manual_mailing_run_twice_sends_once(smtp, app, client, runner, event):
    register(client, email="one@example.org", workshop="1")
    register(client, email="two@example.org", workshop="2")
    first = runner.invoke(args=["reminders", "send", "--workshop", "2"])
    again = runner.invoke(args=["reminders", "send", "--workshop", "2"])
    assert "colloque-test: 1 reminders queued" in first.output
    assert "0 reminders queued" in again.output
    everyone = runner.invoke(args=["reminders", "send"])
    assert "2 reminders queued" in everyone.output
    send_due_now(runner)
    reminders = [m["To"] for m in smtp.messages if m["Subject"].startswith("Rappel")]
    assert sorted(reminders) == ["one@example.org", "two@example.org", "two@example.org"]
    with app.app_context():
        from webapp.models import Event

        assert send_reminder_mailing(db.session, db.session.get(Event, event)) == 0


def test_manual_mailing_refuses_an_unknown_workshop(app, runner, event):
    result = runner.invoke(args=["reminders", "send", "--workshop", "9"])
    assert result.exit_code != 0
    assert "no workshop 9" in result.output
