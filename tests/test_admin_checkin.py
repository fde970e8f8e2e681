"""On the day, organisers check participants in by QR code or from a list, and can undo it."""

import re

import png
import pytest
import test_browser
import zxingcpp
from conftest import PASSWORD, count, mail_body, readable, registration_form
from playwright.sync_api import expect
from sqlalchemy import select

from webapp.audit import SYSTEM
from webapp.extensions import db
from webapp.models import AuditEntry, Registration
from webapp.registration import cancel_registration

# The browser test's fixtures: Chromium, the live site with CSRF on, a French visitor.
browser, site, visitor = test_browser.browser, test_browser.site, test_browser.visitor

ARRIVED = re.compile(r"Présent·e depuis \d{1,2}h(\d\d)?")


def code_of(app, registration_id: int) -> str:
    with app.app_context():
        return db.session.get(Registration, registration_id).checkin_code


def checked_in(app, registration_id: int) -> bool:
    return bool(
        count(
            app,
            "SELECT count(*) FROM registration WHERE id = :id AND checked_in_at IS NOT NULL",
            id=registration_id,
        )
    )


def audit_entries(app, action: str) -> int:
    return count(app, "SELECT count(*) FROM audit_entry WHERE action = :a", a=action)


def test_an_organiser_checks_a_participant_in_by_the_qr_code_url_and_undoes_it(
    app, organiser_client, add_registration
):
    awa = add_registration("Awa", "Diallo", organisation="ASBL Quartiers", workshop=2)
    url = f"/admin/accueil/code/{code_of(app, awa)}"

    page = organiser_client.get(url)
    assert page.status_code == 200
    text = readable(page)
    assert "Awa Diallo" in text and "Atelier 2 : Habitat groupé" in text
    assert "ASBL Quartiers" in text and "Confirmée" in text
    assert "Enregistrer l'arrivée" in text
    assert not checked_in(app, awa), "opening the page changes nothing"

    arrived = organiser_client.post(f"{url}/arrivee")
    assert arrived.status_code == 303 and arrived.headers["Location"] == url
    assert checked_in(app, awa)
    text = readable(organiser_client.get(url))
    assert "arrivée enregistrée à" in text and ARRIVED.search(text)
    assert "Annuler la présence" in text and "Enregistrer l'arrivée" not in text
    assert audit_entries(app, "registration.checked_in") == 1
    with app.app_context():
        entry = db.session.scalar(
            select(AuditEntry).where(AuditEntry.action == "registration.checked_in")
        )
        assert entry.actor == "organiser:organiser@atelier.test"
        assert entry.registration_id == awa
        assert entry.before == {"checked_in_at": None}
        assert entry.after["checked_in_at"].startswith(str(entry.at.date()))

    again = organiser_client.post(f"{url}/arrivee", follow_redirects=True)
    assert "était déjà là depuis" in readable(again) and "rien n'a changé" in readable(again)
    assert audit_entries(app, "registration.checked_in") == 1

    undone = organiser_client.post(f"{url}/annulation", follow_redirects=True)
    assert "Awa Diallo : présence annulée." in readable(undone)
    assert not checked_in(app, awa)
    assert "Enregistrer l'arrivée" in readable(undone)
    assert audit_entries(app, "registration.check_in_undone") == 1
    twice = organiser_client.post(f"{url}/annulation", follow_redirects=True)
    assert "rien n'a changé" in readable(twice)
    assert audit_entries(app, "registration.check_in_undone") == 1


def test_an_anonymous_visitor_of_the_checkin_url_learns_nothing(app, client, add_registration):
    awa = add_registration("Awa", "Diallo", organisation="ASBL Quartiers", workshop=2)
    url = f"/admin/accueil/code/{code_of(app, awa)}"
    for response in (
        client.get(url),
        client.get(url, follow_redirects=True),
        client.get(url, headers={"HX-Request": "true"}),
        client.post(f"{url}/arrivee"),
        client.post(f"{url}/arrivee", follow_redirects=True),
    ):
        body = response.get_data(as_text=True)
        for secret in ("Diallo", "Awa", "Habitat", "ASBL", "Confirmée"):
            assert secret not in body
    assert client.get(url).headers["Location"].startswith("/admin/login")
    assert not checked_in(app, awa)


@pytest.mark.parametrize("code", ["x", "A" * 22, "%00" * 20, "a" * 200])
def test_an_unknown_code_gets_a_french_404(organiser_client, event, code):
    response = organiser_client.get(f"/admin/accueil/code/{code}")
    assert response.status_code == 404
    assert "Ce code d'accueil ne correspond à aucune inscription" in readable(response)
    assert organiser_client.post(f"/admin/accueil/code/{code}/arrivee").status_code == 404


def test_a_waiting_or_cancelled_registration_cannot_be_checked_in(
    app, organiser_client, add_registration
):
    add_registration("Awa", "Diallo", workshop=3)  # the only seat
    waiting = add_registration("Noé", "Martin", workshop=3)
    cancelled = add_registration("Léa", "Dubois", workshop=1)
    with app.app_context():
        cancel_registration(db.session, db.session.get(Registration, cancelled), SYSTEM)
        db.session.commit()

    for registration, reason in ((waiting, "liste d'attente"), (cancelled, "est annulée")):
        url = f"/admin/accueil/code/{code_of(app, registration)}"
        page = organiser_client.get(url)
        assert page.status_code == 200
        assert reason in readable(page) and "Enregistrer l'arrivée" not in readable(page)
        refused = organiser_client.post(f"{url}/arrivee")
        assert refused.status_code == 409
        assert "son arrivée ne peut pas être enregistrée" in readable(refused)
        htmx = organiser_client.post(f"{url}/arrivee", headers={"HX-Request": "true"})
        assert htmx.status_code == 409 and "<html" not in htmx.get_data(as_text=True)
        assert not checked_in(app, registration)
    assert audit_entries(app, "registration.checked_in") == 0


def test_the_list_shows_the_seated_people_found_by_name_with_counts(
    app, organiser_client, add_registration
):
    add_registration("Hélène", "Dupré", organisation="Commune de Namur", workshop=1)
    add_registration("Awa", "Bah", workshop=1)
    add_registration("Ines", "Seule", workshop=3)
    add_registration("Paul", "Attente", workshop=3)  # waiting: not at the door's list

    page = organiser_client.get("/admin/accueil")
    assert page.status_code == 200
    text = readable(page)
    assert "0 présent·e·s, 3 absent·e·s sur 3" in text
    assert text.index("Bah") < text.index("Dupré") < text.index("Seule")
    assert "Attente" not in text and "Commune de Namur" in text
    assert 'hx-get="/admin/accueil"' in page.get_data(as_text=True)

    found = readable(organiser_client.get("/admin/accueil?q=helene+dup"))
    assert "Dupré" in found and "Bah" not in found and "Seule" not in found
    one_workshop = readable(organiser_client.get("/admin/accueil?workshop=3"))
    assert "Seule" in one_workshop and "Bah" not in one_workshop
    assert "0 présent·e·s, 1 absent·e·s sur 1" in one_workshop
    assert organiser_client.get("/admin/accueil?workshop=x&q=%00").status_code == 200


def test_typing_a_name_swaps_only_the_results(organiser_client, add_registration):
    add_registration("Hélène", "Dupré", workshop=1)
    add_registration("Awa", "Bah", workshop=1)
    response = organiser_client.get(
        "/admin/accueil?q=bah&workshop=", headers={"HX-Request": "true"}
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert body.lstrip().startswith('<div id="checkin-results">')
    assert "<html" not in body and "checkin-filters" not in body
    assert "Bah" in body and "Dupré" not in body


def test_a_tap_in_the_list_checks_in_and_swaps_the_row(app, organiser_client, add_registration):
    awa = add_registration("Awa", "Bah", workshop=1)
    code = code_of(app, awa)
    back = "/admin/accueil?workshop=1&q=bah"
    tap = organiser_client.post(
        f"/admin/accueil/code/{code}/arrivee", data={"next": back}, headers={"HX-Request": "true"}
    )
    body = tap.get_data(as_text=True)
    assert tap.status_code == 200 and tap.headers["HX-Trigger"] == "checkin-changed"
    assert body.lstrip().startswith(
        f'<li class="checkin-row checkin-row--present" id="checkin-{awa}"'
    )
    assert ARRIVED.search(readable(tap)) and f"/admin/accueil/code/{code}/annulation" in body
    assert f'value="{back.replace("&", "&amp;")}"' in body
    assert checked_in(app, awa)

    counts = organiser_client.get(
        "/admin/accueil?workshop=1&part=counts", headers={"HX-Request": "true"}
    )
    assert counts.get_data(as_text=True).lstrip().startswith('<p id="checkin-counts"')
    assert "1 présent·e·s, 0 absent·e·s sur 1" in readable(counts)

    undo = organiser_client.post(
        f"/admin/accueil/code/{code}/annulation",
        data={"next": back},
        headers={"HX-Request": "true"},
    )
    assert "présence annulée" in readable(undo) and "Arrivé·e" in readable(undo)
    assert not checked_in(app, awa)


def test_without_javascript_a_tap_comes_back_to_the_same_filtered_list(
    app, organiser_client, add_registration
):
    awa = add_registration("Awa", "Bah", workshop=1)
    back = "/admin/accueil?workshop=1&q=bah"
    tap = organiser_client.post(
        f"/admin/accueil/code/{code_of(app, awa)}/arrivee", data={"next": back}
    )
    assert tap.status_code == 303 and tap.headers["Location"] == back
    page = readable(organiser_client.get(back))
    assert "Awa Bah : arrivée enregistrée à" in page and "1 présent·e·s" in page
    elsewhere = organiser_client.post(
        f"/admin/accueil/code/{code_of(app, awa)}/annulation",
        data={"next": "https://evil.example/"},
    )
    assert elsewhere.headers["Location"] == f"/admin/accueil/code/{code_of(app, awa)}"


def test_checking_in_needs_the_csrf_token(csrf_on, app, make_user, add_registration):
    awa = add_registration("Awa", "Bah", workshop=1)
    url = f"/admin/accueil/code/{code_of(app, awa)}"
    make_user("orga@atelier.test")
    client = app.test_client()
    login_page = client.get("/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    client.post(
        "/admin/login",
        data={"email": "orga@atelier.test", "password": PASSWORD, "csrf_token": token},
    )
    assert client.post(f"{url}/arrivee").status_code == 400
    assert client.post(f"{url}/arrivee", headers={"HX-Request": "true"}).status_code == 400
    assert not checked_in(app, awa)
    page = client.get(url).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post(f"{url}/arrivee", data={"csrf_token": token}).status_code == 303
    assert checked_in(app, awa)


def qr_code_parts(message) -> list:
    return [part for part in message.walk() if part.get_content_type() == "image/png"]


def scanned(image: bytes) -> list[str]:
    """What a QR code reader finds in a PNG."""
    width, height, rows, _info = png.Reader(bytes=image).read()
    grey = bytes(255 * value for row in rows for value in row)
    return [
        code.text for code in zxingcpp.read_barcodes(memoryview(grey).cast("B", (height, width)))
    ]


def test_the_confirmation_mail_carries_the_qr_code_of_the_checkin_url(
    smtp, app, client, runner, organiser_client, event
):
    registered = client.post("/inscription", data=registration_form(email="awa@example.org"))
    assert registered.status_code == 303
    assert runner.invoke(args=["mail", "send-due"]).exit_code == 0
    [message] = smtp.messages
    code = count(app, "SELECT checkin_code FROM registration")
    checkin_url = f"http://atelier.test/admin/accueil/code/{code}"

    assert checkin_url in mail_body(message, "plain")
    html = mail_body(message, "html")
    [image] = qr_code_parts(message)
    assert image["Content-ID"] == "<checkin-qr@atelier>"
    assert image.get_content_disposition() == "inline"
    assert 'src="cid:checkin-qr@atelier"' in html and checkin_url in html
    assert len(image.get_content()) < 2000

    [read] = scanned(image.get_content())
    assert read == checkin_url
    arrival_page = organiser_client.get(read.removeprefix("http://atelier.test"))
    assert "Awa Diallo" in readable(arrival_page)


def test_promotion_and_reminder_mails_carry_the_qr_code_but_not_waiting_or_cancellation_mails(
    smtp, app, client, runner, event
):
    for email in ("seated@example.org", "waiting@example.org"):
        form = registration_form(email=email, workshop="3")  # one seat
        assert client.post("/inscription", data=form).status_code == 303
    assert runner.invoke(args=["mail", "send-due"]).exit_code == 0
    [waiting_mail] = smtp.handler.to("waiting@example.org")
    assert qr_code_parts(waiting_mail) == []
    assert "/admin/accueil/code/" not in mail_body(waiting_mail)

    with app.app_context():
        seated = db.session.scalar(select(Registration).filter_by(email="seated@example.org"))
        cancel_registration(db.session, seated, SYSTEM)
        db.session.commit()
    assert runner.invoke(args=["reminders", "send"]).exit_code == 0
    assert runner.invoke(args=["mail", "send-due"]).exit_code == 0

    [_, promoted, reminder] = smtp.handler.to("waiting@example.org")
    for mail in (promoted, reminder):
        assert len(qr_code_parts(mail)) == 1
        assert "/admin/accueil/code/" in mail_body(mail)
    assert promoted["Subject"].startswith("Une place pour vous")
    assert reminder["Subject"].startswith("Rappel")
    [_, cancelled] = smtp.handler.to("seated@example.org")
    assert cancelled["Subject"].startswith("Inscription annulée")
    assert qr_code_parts(cancelled) == []
    assert "/admin/accueil/code/" not in mail_body(cancelled)


@pytest.mark.browser
def test_at_the_door_a_phone_finds_a_name_and_checks_in_with_one_tap(
    site, visitor, make_user, add_registration
):
    make_user("orga@atelier.test")
    add_registration("Hélène", "Dupré", organisation="Commune de Namur", workshop=1)
    add_registration("Awa", "Bah", workshop=1)
    phone = visitor(viewport=test_browser.PHONE)
    page = phone.open("/admin/login")
    page.fill("#email", "orga@atelier.test")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto("/admin/accueil")
    counts = page.locator("#checkin-counts")

    page.fill("#checkin-search", "helene")
    expect(page.locator(".checkin-row")).to_have_count(1)
    page.click("text=Arrivé·e")  # straight after typing: the search must not undo the swap
    expect(page.locator(".checkin-row--present")).to_contain_text("Présent·e depuis")
    expect(counts).to_contain_text("1 présent·e·s, 1 absent·e·s sur 2")
    page.locator(".checkin-row button").click()
    expect(page.locator(".checkin-row--present")).to_have_count(0)
    expect(counts).to_contain_text("0 présent·e·s, 2 absent·e·s sur 2")
    assert page.evaluate("window.cspViolations") == []
    assert phone.console_errors == [] and phone.page_errors == []
