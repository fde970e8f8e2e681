"""A participant who cannot come cancels from their own page, or an organiser does it for them."""

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import icalendar
import pytest
import time_machine
from conftest import count, mail_body, readable, registration_form
from sqlalchemy import select

from webapp.audit import SYSTEM
from webapp.database import utcnow
from webapp.extensions import db
from webapp.models import Registration, Workshop
from webapp.registration import (
    NothingToCancelError,
    cancel_registration,
    promote_from_waiting_list,
)

STATUS = "SELECT status FROM registration WHERE email = :email"
MAILS = "SELECT count(*) FROM outbox_message WHERE recipient = :email AND kind = :kind"
CALENDARS = "SELECT count(*) FROM outbox_message WHERE recipient = :email AND calendar IS NOT NULL"


def register(client, email: str, workshop: str = "3", **changes) -> None:
    response = client.post(
        "/inscription", data=registration_form(email=email, workshop=workshop, **changes)
    )
    assert response.status_code == 303, readable(response)


def cancel(runner, email: str):
    return runner.invoke(args=["registrations", "cancel", email])


def test_a_cancelled_seat_goes_to_the_first_person_waiting(app, client, runner, event):
    for email in ("seated@example.org", "first@example.org", "second@example.org"):
        register(client, email)  # workshop 3 has one seat

    result = cancel(runner, "  Seated@Example.org ")

    assert result.exit_code == 0, result.output
    assert (
        "colloque-test (Colloque sur les communs urbains): cancelled Awa Diallo "
        "<seated@example.org>, workshop 3." in result.output
    )
    assert "1 waiting participant(s) got the seat" in result.output
    assert count(app, STATUS, email="seated@example.org") == "cancelled"
    assert count(app, STATUS, email="first@example.org") == "confirmed"
    assert count(app, STATUS, email="second@example.org") == "waitlisted"
    assert count(app, "SELECT seats_taken FROM workshop WHERE number = 3") == 1
    assert count(app, MAILS, email="seated@example.org", kind="cancelled") == 1
    assert count(app, MAILS, email="first@example.org", kind="promoted") == 1
    places = readable(client.get("/places"))
    assert "liste d'attente (1 personne)" in places


def test_the_participant_gets_only_the_cancellation_not_the_stale_confirmation(
    smtp, app, client, runner, event
):
    register(client, "awa@example.org", workshop="1")
    assert cancel(runner, "awa@example.org").exit_code == 0
    assert runner.invoke(args=["mail", "send-due"]).exit_code == 0

    [message] = smtp.messages
    assert message["Subject"] == "Inscription annulée : Colloque sur les communs urbains"
    text = mail_body(message)
    assert "Votre inscription à « Colloque sur les communs urbains » est annulée." in text
    assert "Statut : Annulée" in text
    [calendar] = message.iter_attachments()
    assert calendar.get_param("method") == "CANCEL"


def test_a_cancelled_seat_leaves_the_participant_calendar(smtp, app, client, runner, event):
    register(client, "awa@example.org", workshop="1")
    assert runner.invoke(args=["mail", "send-due"]).exit_code == 0
    assert cancel(runner, "awa@example.org").exit_code == 0
    assert runner.invoke(args=["mail", "send-due"]).exit_code == 0

    confirmation, cancellation = smtp.messages
    assert cancellation["Subject"].startswith("Inscription annulée")
    [published] = [
        a for a in confirmation.iter_attachments() if a.get_content_type() == "text/calendar"
    ]
    [withdrawn] = cancellation.iter_attachments()
    assert published.get_content_type() == withdrawn.get_content_type() == "text/calendar"
    assert published.get_param("method") == "PUBLISH"
    assert withdrawn.get_param("method") == "CANCEL"
    added = icalendar.Calendar.from_ical(published.get_content())
    removed = icalendar.Calendar.from_ical(withdrawn.get_content())
    assert (added["method"], removed["method"]) == ("PUBLISH", "CANCEL")
    [day] = added.walk("VEVENT")
    [cancelled_day] = removed.walk("VEVENT")
    assert cancelled_day["uid"] == day["uid"]
    assert cancelled_day["status"] == "CANCELLED"
    assert cancelled_day.decoded("sequence") > day.decoded("sequence")
    assert cancelled_day.decoded("dtstart") == day.decoded("dtstart")
    assert str(cancelled_day["attendee"]) == "mailto:awa@example.org"


def test_leaving_the_waiting_list_moves_the_others_up_and_frees_no_seat(app, client, runner, event):
    for email in ("seated@example.org", "first@example.org", "second@example.org"):
        register(client, email)

    assert cancel(runner, "first@example.org").exit_code == 0

    assert count(app, STATUS, email="seated@example.org") == "confirmed"
    assert count(app, "SELECT seats_taken FROM workshop WHERE number = 3") == 1
    # Nothing was put in their calendar, so their cancellation has nothing to take out.
    assert count(app, CALENDARS, email="first@example.org") == 0
    listing = runner.invoke(args=["registrations", "list"]).output
    assert "waiting #1  Awa Diallo <second@example.org>" in listing
    assert "first@example.org" not in listing


def test_cancelling_twice_says_there_is_nothing_left_and_the_address_can_register_again(
    app, client, runner, event
):
    register(client, "awa@example.org", workshop="2")
    assert cancel(runner, "awa@example.org").exit_code == 0

    again = cancel(runner, "awa@example.org")
    assert again.exit_code != 0
    assert "no registration for awa@example.org" in again.output
    with app.app_context():
        cancelled = db.session.scalar(select(Registration))
        with pytest.raises(NothingToCancelError):
            cancel_registration(db.session, cancelled, SYSTEM)

    register(client, "awa@example.org", workshop="2")
    assert count(app, "SELECT count(*) FROM registration WHERE status = 'confirmed'") == 1
    assert count(app, "SELECT seats_taken FROM workshop WHERE number = 2") == 1


def test_once_the_event_has_started_a_freed_seat_promotes_nobody(app, client, runner, event):
    register(client, "seated@example.org")
    register(client, "waiting@example.org")
    with time_machine.travel(event_start(app) + timedelta(hours=1)):
        assert cancel(runner, "seated@example.org").exit_code == 0
    assert count(app, STATUS, email="waiting@example.org") == "waitlisted"
    assert count(app, MAILS, email="waiting@example.org", kind="promoted") == 0
    assert count(app, "SELECT seats_taken FROM workshop WHERE number = 3") == 0


def test_the_list_shows_seats_waiting_list_lunch_and_dietary_needs(app, client, runner, event):
    register(client, "seated@example.org", dietary="Sans gluten")
    register(client, "waiting@example.org", lunch="no")
    register(client, "other@example.org", workshop="1", lunch="no")

    result = runner.invoke(args=["registrations", "list"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "Workshop 1: Jardins partagés · 1 of 5 seats taken, 0 waiting" in lines
    assert "Workshop 3: Monnaies locales · 1 of 1 seats taken, 1 waiting" in lines
    assert "  seat        Awa Diallo <seated@example.org> · lunch · diet: Sans gluten" in lines
    assert "  waiting #1  Awa Diallo <waiting@example.org> · no lunch" in lines
    assert lines[-1] == "2 seated, 1 for lunch, 1 with dietary needs."


def test_the_same_registration_cancelled_at_once_by_eight_organisers_frees_one_seat(
    app, client, event
):
    for email in ("seated@example.org", "first@example.org", "second@example.org"):
        register(client, email)
    start = threading.Barrier(8)

    def cancel_in_own_session() -> str:
        with app.app_context():
            registration = db.session.scalar(
                select(Registration).where(Registration.email == "seated@example.org")
            )
            db.session.rollback()  # ends the read: SQLite's BEGIN IMMEDIATE would hold the lock
            start.wait()
            try:
                cancel_registration(db.session, registration, SYSTEM)
                db.session.commit()
            except NothingToCancelError:
                return "nothing"
            finally:
                db.session.remove()
            return "cancelled"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda _: cancel_in_own_session(), range(8)))

    assert sorted(outcomes) == ["cancelled"] + ["nothing"] * 7
    assert count(app, "SELECT seats_taken FROM workshop WHERE number = 3") == 1
    assert count(app, STATUS, email="first@example.org") == "confirmed"
    assert count(app, STATUS, email="second@example.org") == "waitlisted"
    assert count(app, "SELECT count(*) FROM outbox_message WHERE kind = 'cancelled'") == 1


def test_someone_promoted_while_being_cancelled_is_still_cancelled(app, client, event):
    """A promotion holds the waiting person's row when the organiser cancels them: the cancel
    waits for it and frees the seat they had just been given."""
    for email in ("seated@example.org", "first@example.org", "second@example.org"):
        register(client, email)
    promoting = threading.Event()

    def promote_slowly() -> None:
        with app.app_context():
            seated = db.session.scalar(
                select(Registration).where(Registration.email == "seated@example.org")
            )
            seated.status = "cancelled"
            workshop = db.session.scalar(select(Workshop).where(Workshop.number == 3))
            workshop.seats_taken -= 1
            db.session.flush()
            promote_from_waiting_list(db.session, workshop)
            promoting.set()
            time.sleep(1)
            db.session.commit()
            db.session.remove()

    promoter = threading.Thread(target=promote_slowly)
    promoter.start()
    assert promoting.wait(timeout=30)
    with app.app_context():
        first = db.session.scalar(
            select(Registration).where(Registration.email == "first@example.org")
        )
        cancel_registration(db.session, first, SYSTEM)  # waits for the promotion to commit
        db.session.commit()
    promoter.join(timeout=30)

    assert count(app, STATUS, email="first@example.org") == "cancelled"
    assert count(app, STATUS, email="second@example.org") == "confirmed"
    assert count(app, "SELECT seats_taken FROM workshop WHERE number = 3") == 1


def test_a_mail_a_crashed_worker_left_behind_is_withdrawn_once_the_registration_is_cancelled(
    smtp, app, client, runner, event
):
    register(client, "awa@example.org", workshop="1")
    with app.app_context():
        # A worker claimed the confirmation and died: its lease has run out.
        db.session.execute(
            db.text(
                "UPDATE outbox_message SET state = 'sending', lease_until = :past, "
                "lease_token = 'dead'"
            ),
            {"past": utcnow() - timedelta(minutes=1)},
        )
        db.session.commit()
    assert cancel(runner, "awa@example.org").exit_code == 0

    assert runner.invoke(args=["mail", "send-due"]).exit_code == 0

    assert [m["Subject"] for m in smtp.messages] == [
        "Inscription annulée : Colloque sur les communs urbains"
    ]
    assert count(app, "SELECT count(*) FROM outbox_message WHERE kind = 'confirmation'") == 0


def manage_link(app, email: str) -> str:
    with app.app_context():
        token = db.session.scalar(
            select(Registration.manage_token).where(Registration.email == email)
        )
    return f"/inscription/{token}"


def test_a_participant_frees_their_seat_from_their_own_page(app, client, event):
    register(client, "seated@example.org")
    register(client, "waiting@example.org")
    link = manage_link(app, "seated@example.org")
    page = readable(client.get(link))
    assert "Vous ne pouvez pas venir ?" in page
    assert "si quelqu'un attend sur la liste d'attente, elle lui revient" in page

    unconfirmed = client.post(f"{link}/annulation", data={})
    assert unconfirmed.status_code == 422
    assert "Cochez la case pour confirmer l'annulation." in readable(unconfirmed)
    assert count(app, STATUS, email="seated@example.org") == "confirmed"

    done = client.post(f"{link}/annulation", data={"confirm": "y"})
    assert done.status_code == 303 and done.headers["Location"].endswith(link)
    assert done.headers["Cache-Control"] == "private, no-store"
    page = readable(client.get(link))
    assert "Annulée" in page and "Cette inscription est annulée." in page
    assert "Annuler mon inscription" not in page
    assert count(app, STATUS, email="waiting@example.org") == "confirmed"
    assert count(app, MAILS, email="seated@example.org", kind="cancelled") == 1

    again = client.post(f"{link}/annulation", data={"confirm": "y"})
    assert again.status_code == 303
    assert count(app, MAILS, email="seated@example.org", kind="cancelled") == 1


def test_someone_waiting_can_leave_the_list_and_in_english(app, client, event):
    register(client, "seated@example.org")
    client.post(
        "/inscription",
        data=registration_form(email="waiting@example.org", workshop="3"),
        headers={"Accept-Language": "en"},
    )
    link = manage_link(app, "waiting@example.org")
    page = readable(client.get(link, headers={"Accept-Language": "fr"}))
    assert "you will leave the waiting list" in page

    client.post(f"{link}/annulation", data={"confirm": "y"})

    assert count(app, STATUS, email="waiting@example.org") == "cancelled"
    assert count(app, STATUS, email="seated@example.org") == "confirmed"
    assert "Cancelled" in readable(client.get(link))


def event_start(app):
    with app.app_context():
        return db.session.scalar(select(Registration)).event.starts_at


def test_once_the_event_has_started_the_page_offers_no_cancellation(app, client, event):
    register(client, "seated@example.org")
    link = manage_link(app, "seated@example.org")
    with time_machine.travel(event_start(app) + timedelta(hours=1)):
        assert "Annuler mon inscription" not in readable(client.get(link))
        refused = client.post(f"{link}/annulation", data={"confirm": "y"})
    assert refused.status_code == 303
    assert count(app, STATUS, email="seated@example.org") == "confirmed"


def csrf_token_of(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def test_an_expired_session_gives_the_page_back_in_the_participant_language(
    csrf_on, app, client, event
):
    client.post(
        "/inscription",
        data=registration_form(
            email="seated@example.org", csrf_token=csrf_token_of(readable(client.get("/")))
        ),
        headers={"Accept-Language": "en"},
    )
    link = manage_link(app, "seated@example.org")
    response = client.post(
        f"{link}/annulation", data={"confirm": "y"}, headers={"Accept-Language": "fr"}
    )
    assert response.status_code == 400
    page = readable(response)
    assert "Your session has expired" in page and "Cancel my registration" in page
    assert count(app, STATUS, email="seated@example.org") == "confirmed"


def test_over_https_the_browser_cancels_with_the_origin_it_is_allowed_to_send(csrf_on, app, event):
    """Flask-WTF refuses an HTTPS post without a Referer; the page's policy must allow its
    origin, and never the token."""
    client = app.test_client()
    https = {"base_url": "https://atelier.test"}
    client.post(
        "/inscription",
        data=registration_form(
            email="seated@example.org", csrf_token=csrf_token_of(readable(client.get("/", **https)))
        ),
        headers={"Referer": "https://atelier.test/"},
        **https,
    )
    link = manage_link(app, "seated@example.org")
    page = client.get(link, **https)
    assert page.headers["Referrer-Policy"] == "strict-origin"
    response = client.post(
        f"{link}/annulation",
        data={"confirm": "y", "csrf_token": csrf_token_of(readable(page))},
        headers={"Referer": "https://atelier.test/"},  # what strict-origin lets the browser send
        **https,
    )
    assert response.status_code == 303, readable(response)
    assert count(app, STATUS, email="seated@example.org") == "cancelled"


def test_a_second_tap_arriving_while_the_first_cancels_is_harmless(app, client, event, monkeypatch):
    import webapp.registration

    register(client, "seated@example.org")
    link = manage_link(app, "seated@example.org")
    client.post(f"{link}/annulation", data={"confirm": "y"})
    # The second request checked before the first had committed.
    monkeypatch.setattr(webapp.registration, "can_cancel", lambda registration: True)
    again = client.post(f"{link}/annulation", data={"confirm": "y"})
    assert again.status_code == 303
    assert count(app, MAILS, email="seated@example.org", kind="cancelled") == 1


def test_an_unknown_link_cannot_cancel_anything(app, client, event):
    register(client, "seated@example.org")
    response = client.post("/inscription/not-a-token/annulation", data={"confirm": "y"})
    assert response.status_code == 404
    for odd in ("%00", "a%00" + "b" * 41, "x" * 5000):
        assert client.get(f"/inscription/{odd}").status_code == 404
        assert client.post(f"/inscription/{odd}/annulation").status_code == 404
    assert count(app, STATUS, email="seated@example.org") == "confirmed"
