"""Mailings from the dashboard: audience, note, preview, one sending per confirmation, progress,
against the real mail worker and a real SMTP server."""

import re
import threading
from datetime import date, timedelta

import time_machine
from conftest import PASSWORD, count, mail_body, readable, registration_form

from webapp import audit
from webapp.extensions import db
from webapp.mailings import send_mailing
from webapp.models import Event, MailingAudience

TITLE = "Colloque sur les communs urbains"


def register(client, email: str, workshop: str, first_name: str = "Awa"):
    response = client.post(
        "/inscription",
        data=registration_form(email=email, workshop=workshop, first_name=first_name),
    )
    assert response.status_code == 303, readable(response)


def cancel(runner, email: str):
    result = runner.invoke(args=["registrations", "cancel", email])
    assert result.exit_code == 0, result.output


def send_due(runner, *, all_delivered=True):
    result = runner.invoke(args=["mail", "send-due"])
    assert result.exit_code == (0 if all_delivered else 1), result.output


def workshop_id(app, event_id: int, number: int) -> int:
    return count(
        app,
        "SELECT id FROM workshop WHERE event_id = :event AND number = :number",
        event=event_id,
        number=number,
    )


def preview(client, **form):
    return client.post("/admin/envois/apercu", data=form)


def draft_of(response) -> str:
    return re.search(r'name="brouillon" value="([^"]+)"', response.get_data(as_text=True))[1]


def confirm(client, draft: str):
    return client.post("/admin/envois", data={"brouillon": draft})


def reminders_to(smtp) -> list[str]:
    return sorted(m["To"] for m in smtp.messages if m["Subject"].startswith("Rappel"))


def fill_workshop_two(client, runner):
    """Workshop 2 (3 seats): a, b and d seated (d promoted when c cancelled), e waiting;
    workshop 1: g."""
    for letter in "abcd":
        register(client, f"{letter}@example.org", "2")
    cancel(runner, "c@example.org")
    register(client, "e@example.org", "2")
    register(client, "g@example.org", "1")


def test_a_mailing_to_one_workshop_reaches_its_confirmed_participants_once(
    smtp, app, client, runner, organiser_client, event
):
    fill_workshop_two(client, runner)
    send_due(runner)  # the registrations' own mails
    shown = preview(organiser_client, audience="workshop", workshop=workshop_id(app, event, 2))
    assert shown.status_code == 200
    assert "Cet e-mail partira vers 3 personnes." in readable(shown)
    draft = draft_of(shown)

    sent = confirm(organiser_client, draft)
    assert sent.status_code == 303
    progress_url = sent.headers["Location"]
    assert re.fullmatch(r"/admin/envois/\d+", progress_url)
    assert count(app, "SELECT count(*) FROM outbox_message WHERE mailing_id IS NOT NULL") == 3
    page = organiser_client.get(progress_url)
    assert "3 messages en file d'envoi." in readable(page)
    assert '<progress class="mailing-progress" max="3" value="0"' in page.get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in page.get_data(as_text=True)
    polled = organiser_client.get(progress_url, headers={"HX-Request": "true"})
    assert polled.status_code == 200
    assert "<html" not in polled.get_data(as_text=True) and "0 %" in readable(polled)
    assert "HX-Request" in polled.headers["Vary"]

    again = confirm(organiser_client, draft)
    assert again.status_code == 303 and again.headers["Location"] == progress_url
    assert "rien de plus n'a été envoyé" in readable(organiser_client.get(progress_url))
    assert count(app, "SELECT count(*) FROM outbox_message WHERE mailing_id IS NOT NULL") == 3
    assert count(app, "SELECT count(*) FROM mailing") == 1

    send_due(runner)
    assert reminders_to(smtp) == ["a@example.org", "b@example.org", "d@example.org"]
    done = organiser_client.get(progress_url, headers={"HX-Request": "true"})
    assert done.status_code == 286  # htmx stops polling
    assert "100 %" in readable(done) and "Terminé." in readable(done)
    page = organiser_client.get(progress_url)
    assert 'value="3"' in page.get_data(as_text=True)
    assert "hx-trigger" not in page.get_data(as_text=True)
    assert count(app, "SELECT count(*) FROM audit_entry WHERE action = 'mailing.sent'") == 1

    listing = readable(organiser_client.get("/admin/envois"))
    assert "Atelier 2 : Habitat groupé" in listing
    assert "organiser@atelier.test" in listing


def test_the_note_goes_above_the_standard_text_in_both_parts_escaped_in_html(
    smtp, app, client, runner, organiser_client, event
):
    register(client, "a@example.org", "1")
    note = "Apportez <b>des bottes</b> & un pique-nique.\r\nLe terrain est boueux.\r\n\r\nÀ bientôt"
    shown = preview(organiser_client, audience="confirmed", note=note)
    assert shown.status_code == 200
    sent = confirm(organiser_client, draft_of(shown))
    assert sent.status_code == 303
    send_due(runner)
    [reminder] = [m for m in smtp.messages if m["Subject"].startswith("Rappel")]
    text = mail_body(reminder).replace("\r\n", "\n")
    assert "Apportez <b>des bottes</b> & un pique-nique.\nLe terrain est boueux.\n\n" in text
    assert text.index("À bientôt") < text.index("Nous vous attendons bientôt")
    assert text.index("Bonjour Awa,") < text.index("Apportez")
    html = reminder.get_body(preferencelist=("html",)).get_content()
    assert (
        "<p>Apportez &lt;b&gt;des bottes&lt;/b&gt; &amp; un pique-nique.<br>"
        "Le terrain est boueux.</p>"
    ) in html
    assert "<b>des bottes" not in html
    assert html.index("<p>À bientôt</p>") < html.index("Nous vous attendons bientôt")
    listing = readable(organiser_client.get("/admin/envois"))
    assert "Apportez <b>des bottes</b>" in listing


def test_the_preview_shows_the_count_the_real_subject_and_the_html_in_a_sandbox(
    app, client, organiser_client, event
):
    register(client, "a@example.org", "1", first_name="Zoé")
    register(client, "b@example.org", "3")
    shown = preview(organiser_client, audience="confirmed", note="Une <i>note</i>")
    text = readable(shown)
    assert "Cet e-mail partira vers 2 personnes." in text
    assert "celui que recevra Zoé Diallo" in text
    assert f"Rappel : {TITLE}" in text
    assert "Bonjour Zoé," in text and "Nous vous attendons bientôt" in text
    assert "Envoyer aux 2 personnes" in text
    body = shown.get_data(as_text=True)
    frame = re.search(r'<iframe class="mailing-preview__html" sandbox src="([^"]+)"', body)[1]
    html = organiser_client.get(frame.replace("&amp;", "&"))
    assert html.status_code == 200
    assert html.mimetype == "text/html"
    # The QR code shows as the recipient will see it (a sent mail carries it as a cid: part).
    assert 'src="data:image/png;base64,' in html.get_data(as_text=True)
    policy = html.headers["Content-Security-Policy"]
    assert "style-src 'unsafe-inline'" in policy and "sandbox" in policy
    assert "script-src" not in policy and "default-src 'none'" in policy
    assert "frame-ancestors 'self'" in policy and html.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert 'style="font-family' in html.get_data(as_text=True)
    assert "Une &lt;i&gt;note&lt;/i&gt;" in html.get_data(as_text=True)
    assert "style=" not in body.replace(html.get_data(as_text=True), "")  # our page: none
    assert count(app, "SELECT count(*) FROM outbox_message WHERE kind = 'reminder'") == 0
    assert count(app, "SELECT count(*) FROM mailing") == 0
    tampered = organiser_client.get("/admin/envois/apercu/message?brouillon=x.y")
    assert tampered.status_code == 400


def test_the_waiting_list_is_told_it_is_still_waiting(
    smtp, app, client, runner, organiser_client, event
):
    register(client, "seated@example.org", "3")
    register(client, "first@example.org", "3")
    register(client, "second@example.org", "3")
    shown = preview(organiser_client, audience="waiting")
    text = readable(shown)
    assert "Cet e-mail partira vers 2 personnes." in text
    assert "Vous êtes toujours sur la liste d'attente" in text
    assert "Nous vous attendons bientôt" not in text
    assert "Liste d'attente, position 1" in text
    assert confirm(organiser_client, draft_of(shown)).status_code == 303
    send_due(runner)
    assert reminders_to(smtp) == ["first@example.org", "second@example.org"]
    [second] = [
        m for m in smtp.handler.to("second@example.org") if m["Subject"].startswith("Rappel")
    ]
    body = mail_body(second)
    assert "Vous êtes toujours sur la liste d'attente" in body
    assert "Liste d'attente, position 2" in body
    assert "Nous vous attendons" not in body
    assert not list(second.iter_attachments())  # no calendar entry for a seat they do not have


def test_an_audience_with_nobody_is_refused(app, client, runner, organiser_client, event):
    nobody = preview(organiser_client, audience="waiting")
    assert nobody.status_code == 422
    assert "Personne ne correspond à ces destinataires" in readable(nobody)

    register(client, "a@example.org", "1")
    shown = preview(organiser_client, audience="workshop", workshop=workshop_id(app, event, 1))
    assert shown.status_code == 200
    cancel(runner, "a@example.org")
    late = confirm(organiser_client, draft_of(shown))
    assert late.status_code == 422
    assert "Personne ne correspond à ces destinataires" in readable(late)
    assert count(app, "SELECT count(*) FROM mailing") == 0
    assert count(app, "SELECT count(*) FROM outbox_message WHERE kind = 'reminder'") == 0


def test_bad_input_is_refused_with_a_french_message(
    app, client, organiser_client, event_factory, event
):
    register(client, "a@example.org", "1")
    earlier = (date.today() + timedelta(days=5)).isoformat()
    other_event = event_factory(event__slug="autre-colloque", event__date=earlier)
    cases = [
        ({"audience": "everyone"}, "Choisissez les destinataires."),
        ({}, "Choisissez les destinataires."),
        ({"audience": "workshop"}, "Choisissez un atelier."),
        (
            {"audience": "workshop", "workshop": workshop_id(app, other_event, 1)},
            "Choisissez un atelier.",
        ),
        (
            {"audience": "confirmed", "note": "x" * 2001},
            "La note fait 2 000 caractères au maximum.",
        ),
        ({"audience": "confirmed", "note": "Bonjour\x00"}, "caractères non autorisés"),
        ({"audience": "confirmed", "note": "Bonjour\x1b[31m"}, "caractères non autorisés"),
    ]
    for form, message in cases:
        response = preview(organiser_client, **form)
        assert response.status_code == 422, form
        assert message in readable(response), form
    assert preview(organiser_client, audience="confirmed", note="x" * 2000).status_code == 200
    as_json = organiser_client.post("/admin/envois/apercu", json={"audience": 5, "note": 7})
    assert as_json.status_code == 422
    forged = confirm(organiser_client, "eyJhdWRpZW5jZSI6ImNvbmZpcm1lZCJ9.forged")
    assert forged.status_code == 400
    assert "Cet aperçu n'est plus valable" in readable(forged)
    assert confirm(organiser_client, "").status_code == 400
    assert organiser_client.get("/admin/envois/999").status_code == 404
    assert count(app, "SELECT count(*) FROM mailing") == 0


def test_a_mailing_of_another_event_is_not_shown(app, client, organiser_client, event_factory):
    earlier = (date.today() + timedelta(days=5)).isoformat()
    other = event_factory(event__slug="autre-colloque", event__date=earlier)
    current = event_factory()
    register(client, "a@example.org", "1")
    with app.app_context():
        result = send_mailing(
            db.session,
            audit.SYSTEM,
            db.session.get(Event, current),
            MailingAudience.CONFIRMED,
            None,
            None,
            "key-of-the-current-event-0001",
        )
        db.session.commit()
        mailing_id = result.mailing.id
        db.session.execute(
            db.text("UPDATE mailing SET event_id = :other WHERE id = :id"),
            {"other": other, "id": mailing_id},
        )
        db.session.commit()
    assert organiser_client.get(f"/admin/envois/{mailing_id}").status_code == 404


def test_failed_messages_show_their_error_and_the_progress_still_ends(
    smtp, app, client, runner, organiser_client, event
):
    register(client, "a@example.org", "1")
    register(client, "gone@example.org", "1")
    send_due(runner)
    smtp.handler.refused_recipients["gone@example.org"] = "550 5.1.1 no such mailbox"
    sent = confirm(organiser_client, draft_of(preview(organiser_client, audience="confirmed")))
    send_due(runner, all_delivered=False)
    done = organiser_client.get(sent.headers["Location"], headers={"HX-Request": "true"})
    assert done.status_code == 286
    text = readable(done)
    assert "100 %" in text
    assert "gone@example.org" in text and "550 5.1.1 no such mailbox" in text
    listing = organiser_client.get("/admin/envois").get_data(as_text=True)
    figures = re.findall(r'<td class="number">(\d+)</td>', listing)
    assert figures == ["1", "0", "1"]  # sent, queued, failed
    assert "Tous les participant·e·s confirmé·e·s" in readable(
        organiser_client.get("/admin/envois")
    )


def test_two_confirmations_at_once_queue_the_mailing_once(app, client, event):
    for letter in "abc":
        register(client, f"{letter}@example.org", "1")
    barrier = threading.Barrier(2)
    results = []

    def confirm_now():
        with app.app_context():
            barrier.wait()
            result = send_mailing(
                db.session,
                audit.SYSTEM,
                db.session.get(Event, event),
                MailingAudience.CONFIRMED,
                None,
                None,
                "the-same-key-for-both-0001",
            )
            db.session.commit()
            results.append((result.mailing.id, result.queued))
            db.session.remove()

    threads = [threading.Thread(target=confirm_now) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(queued for _, queued in results) == [0, 3]
    assert len({mailing_id for mailing_id, _ in results}) == 1
    assert count(app, "SELECT count(*) FROM mailing") == 1
    assert count(app, "SELECT count(*) FROM outbox_message WHERE kind = 'reminder'") == 3


def csrf_token_of(response) -> str:
    return re.search(r'name="csrf_token"[^>]* value="([^"]+)"', response.get_data(as_text=True))[1]


def test_every_mailing_form_needs_its_csrf_token(csrf_on, app, client, make_user, event):
    form = registration_form(email="a@example.org", csrf_token=csrf_token_of(client.get("/")))
    assert client.post("/inscription", data=form).status_code == 303
    staff = app.test_client()
    login = {"email": make_user("orga@atelier.test"), "password": PASSWORD}
    login["csrf_token"] = csrf_token_of(staff.get("/admin/login"))
    assert staff.post("/admin/login", data=login).status_code == 303

    assert preview(staff, audience="confirmed").status_code == 400
    token = csrf_token_of(staff.get("/admin/envois"))
    shown = preview(staff, audience="confirmed", csrf_token=token)
    assert shown.status_code == 200
    draft = draft_of(shown)
    assert confirm(staff, draft).status_code == 400
    assert count(app, "SELECT count(*) FROM mailing") == 0
    sent = staff.post("/admin/envois", data={"brouillon": draft, "csrf_token": token})
    assert sent.status_code == 303
    assert count(app, "SELECT count(*) FROM mailing") == 1


def test_command_line_mailings_and_the_automatic_reminder_are_listed(
    app, client, runner, organiser_client, event
):
    register(client, "a@example.org", "1")
    result = runner.invoke(args=["reminders", "send", "--workshop", "1"])
    assert "1 reminders queued" in result.output
    page = readable(organiser_client.get("/admin/envois"))
    assert "ligne de commande" in page
    assert "Atelier 1 : Jardins partagés" in page

    with app.app_context():
        from webapp.reminders import queue_due_reminders, reminder_moment

        moment = reminder_moment(db.session.get(Event, event))
    assert "Il n'est pas encore parti." in page
    expected = f'<time datetime="{moment.isoformat()}">'
    assert expected in organiser_client.get("/admin/envois").get_data(as_text=True)
    with app.app_context(), time_machine.travel(moment + timedelta(minutes=1), tick=False):
        assert queue_due_reminders(db.session) == 1
        db.session.commit()
    page = readable(organiser_client.get("/admin/envois"))
    assert "0 envoyés, 1 en file, 0 échecs." in page


def test_a_person_promoted_before_the_mailing_went_does_not_get_the_still_waiting_text(
    smtp, app, client, runner, organiser_client, event
):
    register(client, "seated@example.org", "3")
    register(client, "first@example.org", "3")
    shown = preview(organiser_client, audience="waiting")
    assert confirm(organiser_client, draft_of(shown)).status_code == 303
    cancel(runner, "seated@example.org")  # first@ gets the seat before the mailing is sent
    send_due(runner)
    subjects = [m["Subject"] for m in smtp.handler.to("first@example.org")]
    assert not any(subject.startswith("Rappel") for subject in subjects)
    assert any(subject.startswith("Une place pour vous") for subject in subjects)


def test_moving_someone_keeps_their_copy_of_a_mailing(
    smtp, app, client, runner, organiser_client, admin_client, event
):
    register(client, "moved@example.org", "1")
    shown = preview(organiser_client, audience="confirmed", note="Salle changée.")
    assert confirm(organiser_client, draft_of(shown)).status_code == 303
    moved = count(app, "SELECT id FROM registration WHERE email = 'moved@example.org'")
    response = admin_client.post(
        f"/admin/inscriptions/{moved}/deplacement",
        data={"workshop": workshop_id(app, event, 2), "confirm": "y"},
    )
    assert response.status_code == 303
    send_due(runner)
    reminders = [m for m in smtp.handler.to("moved@example.org") if "Rappel" in m["Subject"]]
    assert len(reminders) == 1 and "Salle changée." in mail_body(reminders[0])
