"""End to end: Debian's Chromium, driven by Playwright, uses the programme page and its form."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import count, missing
from playwright.sync_api import Page, expect, sync_playwright

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 740}
POLL_SECONDS = 1
# One polling interval, in milliseconds, plus a second for the poll's own round trip on a busy
# machine: what a change may take to reach another open page.
WATCHED_POLL_SECONDS = 2
ONE_POLL = WATCHED_POLL_SECONDS * 1000 + 1000

# Runs before the page's own scripts, untouched by its CSP: keeps every violation it reports.
RECORD_CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""

REGISTRATION_ROW = (
    "SELECT count(*) FROM registration JOIN workshop ON workshop.id = registration.workshop_id "
    "WHERE registration.email = :email AND workshop.number = :number"
)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        missing(f"Chromium is not installed at {CHROMIUM}")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    except Exception:
        playwright.stop()
        raise
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def site(config_overrides, db_url, request):
    """The app served with CSRF on and a fast seat poll, the test event loaded, on each database.

    It sets the overrides before it asks for the app, so a test may list `app`, `event` or
    `live_server` after it; a test that lists `app` first is caught here. Fixtures that change
    settings (`no_poll`) come before it.
    (`db_url` is an argument so that pytest sees it and runs the test on both databases.)
    """
    config_overrides["WTF_CSRF_ENABLED"] = True
    config_overrides.setdefault("AVAILABILITY_POLL_SECONDS", POLL_SECONDS)
    app = request.getfixturevalue("app")
    assert app.config["WTF_CSRF_ENABLED"], "request `site` before `app` in the test's arguments"
    request.getfixturevalue("event")
    return request.getfixturevalue("live_server")


@pytest.fixture
def watched_poll(config_overrides):
    """Polls every 2 s, so that the allowance for the request itself stays small beside it."""
    config_overrides["AVAILABILITY_POLL_SECONDS"] = WATCHED_POLL_SECONDS


@pytest.fixture
def no_poll(config_overrides):
    """The page polls once an hour: only the registration's own answer refreshes seats."""
    config_overrides["AVAILABILITY_POLL_SECONDS"] = 3600


class Visitor:
    """A browser context of its own (cookies, session) with the pages it opened."""

    def __init__(self, browser, base_url: str, **options):
        self.context = browser.new_context(locale="fr-BE", base_url=base_url, **options)
        self.context.add_init_script(RECORD_CSP_VIOLATIONS)
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.context.on("console", self._console)
        self.context.on("weberror", lambda error: self.page_errors.append(str(error.error)))

    def _console(self, message):
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url')})")

    def open(self, path: str = "/") -> Page:
        page = self.context.new_page()
        response = page.goto(path)
        assert response is not None and response.status == 200, response
        return page


@pytest.fixture
def visitor(browser, site):
    """Opens browser contexts in French, as a Belgian visitor's Chromium would ask for."""
    visitors: list[Visitor] = []

    def make(**options) -> Visitor:
        visitors.append(Visitor(browser, site.url, **options))
        return visitors[-1]

    yield make
    for each in visitors:
        each.context.close()


def fill_registration(page: Page, *, email: str, workshop: str, lunch: str = "Oui") -> None:
    form = page.locator("#registration form")
    form.get_by_label("Prénom", exact=True).fill("Awa")
    form.get_by_label("Nom", exact=True).fill("Diallo")
    form.get_by_label("Adresse e-mail").fill(email)
    form.locator("label.choice", has_text=workshop).click()
    form.locator("label.choice--inline", has_text=lunch).click()
    form.get_by_label("Régime alimentaire ou allergies (facultatif)").fill("Sans gluten")


def submit(page: Page) -> None:
    page.locator("#registration").get_by_role("button", name="Je m'inscris").click()


def test_a_participant_registers_in_place_and_sees_the_seat_count_drop(no_poll, site, app, visitor):
    page = visitor(viewport=PHONE, is_mobile=True, has_touch=True).open("/")
    seats = page.locator("#seats-2")
    expect(seats).to_contain_text("3 places restantes")
    page.evaluate("window.sameDocument = 'still here'")

    fill_registration(page, email="awa.diallo@example.org", workshop="Atelier 2 : Habitat groupé")
    expect(page.locator("input[name=workshop][value='2']")).to_be_checked()
    expect(page.locator("input[name=lunch][value='yes']")).to_be_checked()
    page.locator("#consent").check()
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        submit(page)

    response = posted.value
    assert response.status == 200
    assert response.request.headers.get("hx-request") == "true"
    panel = page.locator("#registration")
    expect(panel).to_contain_text("Votre inscription est confirmée")
    expect(panel).to_contain_text("awa.diallo@example.org")
    expect(panel).to_contain_text("Atelier 2 : Habitat groupé")
    expect(seats).to_contain_text("2 places restantes")
    assert page.url == f"{site.url}/"
    assert page.evaluate("window.sameDocument") == "still here"
    assert count(app, REGISTRATION_ROW, email="awa.diallo@example.org", number=2) == 1


def test_a_workshop_filled_on_one_page_shows_as_full_on_another_within_one_poll(site, app, visitor):
    watcher = visitor().open("/")
    expect(watcher.locator("#seats-3")).to_contain_text("1 place restante")
    expect(watcher.locator("#choice-seats-3")).to_contain_text("1 place restante")

    registrant = visitor().open("/")
    fill_registration(registrant, email="last.seat@example.org", workshop="Monnaies locales")
    registrant.locator("#consent").check()
    submit(registrant)
    expect(registrant.locator("#registration")).to_contain_text("Votre inscription est confirmée")

    expect(watcher.locator("#seats-3")).to_contain_text("Complet", timeout=ONE_POLL)
    expect(watcher.locator("#choice-seats-3")).to_contain_text("Complet", timeout=ONE_POLL)
    expect(watcher.locator("#seats-2")).to_contain_text("3 places restantes")
    assert count(app, REGISTRATION_ROW, email="last.seat@example.org", number=3) == 1


def test_without_javascript_the_form_posts_and_redirects_to_the_confirmation_page(
    site, app, visitor
):
    page = visitor(java_script_enabled=False).open("/")
    fill_registration(page, email="sans.js@example.org", workshop="Jardins partagés", lunch="Non")
    page.locator("#consent").check()
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        submit(page)

    assert posted.value.status == 303
    assert posted.value.request.headers.get("hx-request") is None
    page.wait_for_url("**/inscription/confirmation")
    expect(page.locator("#registration")).to_contain_text("Votre inscription est confirmée")
    expect(page.locator("#registration")).to_contain_text("sans.js@example.org")
    assert count(app, REGISTRATION_ROW, email="sans.js@example.org", number=1) == 1


def test_invalid_answers_come_back_in_place_with_messages_and_the_typed_values(site, app, visitor):
    page = visitor().open("/")
    page.evaluate("window.sameDocument = 'still here'")
    fill_registration(page, email="pas-une-adresse", workshop="Jardins partagés", lunch="Non")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        submit(page)

    assert posted.value.status == 422
    form = page.locator("#registration form")
    expect(form).to_contain_text("Cette adresse e-mail n'est pas valide.")
    expect(form).to_contain_text("Votre accord est nécessaire pour vous inscrire.")
    expect(form.locator("#email")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("Prénom", exact=True)).to_have_value("Awa")
    expect(form.get_by_label("Nom", exact=True)).to_have_value("Diallo")
    expect(form.get_by_label("Adresse e-mail")).to_have_value("pas-une-adresse")
    expect(form.locator("input[name=workshop][value='1']")).to_be_checked()
    expect(form.locator("input[name=lunch][value='no']")).to_be_checked()
    expect(form.locator("#dietary")).to_have_value("Sans gluten")
    expect(form.locator("#consent")).not_to_be_checked()
    assert page.url == f"{site.url}/"
    assert page.evaluate("window.sameDocument") == "still here"
    assert count(app, "SELECT count(*) FROM registration") == 0


def wait_for_polls(page: Page, times: int = 2) -> None:
    for _ in range(times):
        with page.expect_response(lambda r: urlsplit(r.url).path == "/places"):
            pass


def assert_clean(person: Visitor, page: Page) -> None:
    assert page.evaluate("window.cspViolations") == []
    assert not person.page_errors, "\n".join(person.page_errors)
    assert not person.console_errors, "\n".join(person.console_errors)


def test_the_page_logs_no_console_error_and_breaks_no_content_security_rule(site, visitor):
    person = visitor()
    page = person.open("/")
    expect(page.locator("#registration form")).to_be_visible()
    wait_for_polls(page)

    assert_clean(person, page)


def test_after_registering_the_seat_poll_logs_no_console_error(site, visitor):
    person = visitor()
    page = person.open("/")
    fill_registration(page, email="console@example.org", workshop="Jardins partagés")
    page.locator("#consent").check()
    person.console_errors.clear()
    submit(page)
    expect(page.locator("#registration")).to_contain_text("Votre inscription est confirmée")
    wait_for_polls(page)

    assert_clean(person, page)


def test_a_seat_poll_still_in_flight_when_the_form_is_sent_logs_no_console_error(
    watched_poll, site, visitor
):
    person = visitor()
    page = person.open("/")
    held = []
    page.route("**/places?part=choices*", lambda route: held.append(route))
    fill_registration(page, email="in-flight@example.org", workshop="Jardins partagés")
    page.locator("#consent").check()
    for _ in range(2 * ONE_POLL // 50):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the choices poll should be waiting for its answer"

    submit(page)
    page.wait_for_timeout(500)
    with page.expect_response(lambda r: "part=choices" in r.url):
        held.pop().continue_()
    expect(page.locator("#registration")).to_contain_text("Votre inscription est confirmée")

    assert_clean(person, page)


def assert_no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px screen"


def test_on_a_360_pixel_wide_phone_the_page_does_not_scroll_sideways(site, visitor):
    page = visitor(viewport=PHONE, is_mobile=True, has_touch=True).open("/")
    expect(page.locator("#registration form")).to_be_visible()
    assert_no_sideways_scroll(page)

    submit(page)
    expect(page.locator("#registration .form-summary")).to_be_visible()
    assert_no_sideways_scroll(page)

    long_address = "marie-christine.vandenbergh-delacroix@maison-des-associations-liege.be"
    fill_registration(page, email=long_address, workshop="Jardins partagés")
    page.locator("#consent").check()
    submit(page)
    expect(page.locator("#registration")).to_contain_text(long_address)
    assert_no_sideways_scroll(page)


def test_on_a_phone_a_participant_cancels_from_the_link_in_their_mail(site, app, visitor):
    person = visitor(viewport=PHONE, is_mobile=True, has_touch=True)
    page = person.open("/")
    fill_registration(page, email="cannot.come@example.org", workshop="Monnaies locales")
    page.locator("#consent").check()
    submit(page)
    expect(page.locator("#registration")).to_contain_text("Votre inscription est confirmée")
    token = count(
        app,
        "SELECT manage_token FROM registration WHERE email = :email",
        email="cannot.come@example.org",
    )

    page.goto(f"/inscription/{token}")
    page.get_by_role("button", name="Annuler mon inscription").click()
    expect(page.locator(".field-error")).to_contain_text("Cochez la case")
    person.console_errors.clear()  # Chromium logs the 422 of that answer itself
    page.get_by_label("Je ne pourrai pas venir : j'annule mon inscription.").check()
    page.get_by_role("button", name="Annuler mon inscription").click()

    expect(page.locator("main")).to_contain_text("Cette inscription est annulée.")
    assert_no_sideways_scroll(page)
    assert_clean(person, page)
    assert count(app, "SELECT seats_taken FROM workshop WHERE number = 3") == 0
