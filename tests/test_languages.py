"""French by default, English complete, chosen by a switch or the browser."""

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po
from conftest import readable, registration_form

ROOT = Path(__file__).resolve().parent.parent


def test_every_user_facing_string_has_an_english_translation(tmp_path):
    template = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-o",
            str(template),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with template.open("rb") as handle:
        wanted = {message.id for message in read_po(handle) if message.id}
    with (ROOT / "translations/en/LC_MESSAGES/messages.po").open("rb") as handle:
        english = {message.id: message.string for message in read_po(handle) if message.id}
    untranslated = [
        msgid
        for msgid in wanted
        if not english.get(msgid) or (isinstance(english[msgid], tuple) and not all(english[msgid]))
    ]
    assert untranslated == []


def test_french_is_the_default(client, event):
    page = readable(client.get("/"))
    assert '<html lang="fr">' in page
    assert "Programme de la journée" in page


def test_browser_language_picks_english(client, event):
    page = readable(client.get("/", headers={"Accept-Language": "en-GB,en;q=0.8"}))
    assert '<html lang="en">' in page
    assert "Programme" in page and "Register" in page
    assert "Programme de la journée" not in page


def test_on_an_english_page_the_event_own_french_texts_are_marked_french(client, event):
    english = readable(client.get("/", headers={"Accept-Language": "en"}))
    assert '<h1 id="event-title" lang="fr">Colloque sur les communs urbains</h1>' in english
    assert 'Workshop 1: <span lang="fr">Jardins partagés</span>' in english
    french = readable(client.get("/", headers={"Accept-Language": "fr"}))
    assert 'lang="fr"' not in french.replace('<html lang="fr">', "").replace(
        '<span aria-current="true" lang="fr">', ""
    )


def test_an_event_written_in_english_is_marked_english_on_french_pages(client, event_factory):
    event_factory(event__slug="english-day", event__language="en", event__title="Commons Day")
    french = readable(client.get("/", headers={"Accept-Language": "fr"}))
    assert '<h1 id="event-title" lang="en">Commons Day</h1>' in french
    english = readable(client.get("/", headers={"Accept-Language": "en"}))
    assert '<h1 id="event-title">Commons Day</h1>' in english


def test_language_switch_is_remembered_and_dates_follow(client, event):
    response = client.get("/langue/en?next=/confidentialite")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/confidentialite")
    page = readable(client.get("/", headers={"Accept-Language": "fr"}))
    assert '<html lang="en">' in page
    assert "day" in page.lower()  # e.g. "Thursday, 18 December 2026"
    client.get("/langue/fr?next=/")
    assert '<html lang="fr">' in readable(client.get("/"))


def test_language_switch_refuses_to_redirect_elsewhere(client, event):
    for target in (
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "/\t/evil.example",
        "/%09/evil.example",
        "/\r\nSet-Cookie: x=y",
        "/nowhere",
    ):
        response = client.get("/langue/en", query_string={"next": target})
        assert response.status_code == 303
        assert response.headers["Location"] in ("/", "http://localhost/"), target
    kept = client.get("/langue/en", query_string={"next": "/confidentialite?x=1"})
    assert kept.headers["Location"] == "/confidentialite?x=1"


def test_registration_stores_the_language_of_the_page(app, client, event):
    client.get("/langue/en?next=/")
    client.post("/inscription", data=registration_form())
    from conftest import count

    assert count(app, "SELECT count(*) FROM registration WHERE language = 'en'") == 1


def test_the_participant_page_speaks_the_language_of_the_registration(app, client, event):
    client.post("/inscription", data=registration_form(), headers={"Accept-Language": "en"})
    with app.app_context():
        from webapp.extensions import db

        token = db.session.execute(db.text("SELECT manage_token FROM registration")).scalar()
    french_browser = {"Accept-Language": "fr"}
    assert "My registration" in readable(
        client.get(f"/inscription/{token}", headers=french_browser)
    )
    client.get("/langue/fr?next=/")
    assert "Mon inscription" in readable(
        client.get(f"/inscription/{token}", headers=french_browser)
    )


def test_english_validation_messages(client, event):
    client.get("/langue/en?next=/")
    response = client.post(
        "/inscription", data=registration_form(first_name=""), headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert "Enter your first name." in readable(response)


def test_french_punctuation_keeps_its_space_on_the_same_line(client, event_factory):
    event_factory(event__title="Colloque : les communs ?")
    french = client.get("/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Atelier 1\u00a0: Jardins partagés" in french
    assert "Prendrez-vous le lunch\u00a0?" in french
    assert "Colloque : les communs ?" in french, "the event's own text stays as written"
    english = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "\u00a0" not in english
