"""End to end on the dashboard: an admin finds a participant as they type and moves them, while
the public programme, open elsewhere, shows the new seat counts."""

from __future__ import annotations

import pytest
import test_browser
from conftest import PASSWORD, count
from playwright.sync_api import expect

from webapp.extensions import db
from webapp.models import Event
from webapp.registration import Applicant, register

pytestmark = pytest.mark.browser

# The public browser tests' Chromium, served site and visitors.
browser = test_browser.browser
site = test_browser.site
visitor = test_browser.visitor
ONE_POLL = test_browser.ONE_POLL
assert_clean = test_browser.assert_clean


def registered(app, first_name: str, last_name: str, workshop_number: int) -> None:
    with app.app_context():
        event = db.session.query(Event).one()
        applicant = Applicant(
            first_name=first_name,
            last_name=last_name,
            email=f"{first_name}.{last_name}@example.org".lower(),
            organisation="ASBL Quartiers",
            workshop_number=workshop_number,
            lunch=True,
            dietary=None,
            language="fr",
        )
        register(db.session, event, applicant)
        db.session.commit()


def test_an_admin_finds_a_participant_as_they_type_and_moves_them_to_another_workshop(
    site, app, make_user, visitor
):
    registered(app, "Awa", "Diallo", 1)
    registered(app, "Marc", "Lambert", 1)
    email = make_user("admin@atelier.test", "admin")
    # CSP violations are counted per page: each page is checked before leaving it.
    watcher = visitor().open("/")
    expect(watcher.locator("#seats-1")).to_contain_text("3 places restantes")
    expect(watcher.locator("#seats-2")).to_contain_text("3 places restantes")

    admin = visitor()
    page = admin.open("/admin/login")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("link", name="Inscriptions")).to_be_visible()
    assert_clean(admin, page)

    page.get_by_role("link", name="Inscriptions").click()
    rows = page.locator("#registrations-results tbody tr")
    expect(rows).to_have_count(2)
    assert_clean(admin, page)
    page.evaluate("window.sameDocument = 'still here'")
    with page.expect_response(lambda r: "q=dial" in r.url) as searched:
        page.get_by_label("Rechercher (nom, e-mail ou organisation)").press_sequentially(
            "dial", delay=50
        )
    assert searched.value.request.headers.get("hx-request") == "true"
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Diallo Awa")
    expect(page.locator("#registrations-results")).to_contain_text("1 inscription correspond.")
    assert page.evaluate("window.sameDocument") == "still here"
    assert "q=dial" in page.url  # a reload or a shared link keeps the search
    assert_clean(admin, page)

    page.get_by_role("link", name="Diallo Awa").click()
    expect(page.get_by_role("heading", name="Awa Diallo")).to_be_visible()
    page.get_by_label("Nouvel atelier").select_option(label="Atelier 2 : Habitat groupé")
    page.get_by_label("Je confirme le changement d'atelier.").check()
    page.get_by_role("button", name="Changer d'atelier").click()

    expect(page.locator(".panel--success")).to_contain_text(
        "Awa Diallo est maintenant dans l'atelier 2."
    )
    expect(page.locator(".registration-facts")).to_contain_text("Atelier 2 : Habitat groupé")
    assert_clean(admin, page)
    expect(watcher.locator("#seats-2")).to_contain_text("2 places restantes", timeout=ONE_POLL)
    expect(watcher.locator("#seats-1")).to_contain_text("4 places restantes", timeout=ONE_POLL)
    assert count(app, "SELECT seats_taken FROM workshop WHERE number = 1") == 1
    assert count(app, "SELECT seats_taken FROM workshop WHERE number = 2") == 1


def test_sorting_then_filtering_then_searching_keeps_each_choice_without_a_page_load(
    site, app, make_user, visitor
):
    for first, last, number in [("Awa", "Diallo", 1), ("Zoé", "Martin", 2), ("Marc", "Dubois", 2)]:
        registered(app, first, last, number)
    email = make_user("admin@atelier.test", "admin")
    admin = visitor()
    page = admin.open("/admin/login?next=/admin/inscriptions")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    names = page.locator("#registrations-results tbody th")
    expect(names).to_have_count(3)
    page.evaluate("window.sameDocument = 'still here'")

    page.get_by_role("link", name="Nom").click()
    expect(names).to_have_text(["Diallo Awa", "Dubois Marc", "Martin Zoé"])
    page.get_by_role("link", name="Nom").click()
    expect(names).to_have_text(["Martin Zoé", "Dubois Marc", "Diallo Awa"])
    page.get_by_label("Atelier", exact=True).select_option("2")
    expect(names).to_have_text(["Martin Zoé", "Dubois Marc"])
    page.get_by_label("Rechercher (nom, e-mail ou organisation)").press_sequentially("o")
    expect(page.locator("#registrations-results")).to_contain_text("2 inscriptions correspondent.")
    expect(names).to_have_text(["Martin Zoé", "Dubois Marc"])

    assert page.evaluate("window.sameDocument") == "still here"
    assert "sort=name" in page.url and "order=desc" in page.url and "atelier=2" in page.url
    assert_clean(admin, page)
