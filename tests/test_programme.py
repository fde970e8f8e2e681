"""The programme page as a visitor reads it."""

import hashlib
import re
import tomllib
from pathlib import Path

import pytest
from conftest import readable, registration_form

from webapp.config import ROOT
from webapp.event_file import load_event
from webapp.extensions import db

# The event's public page, as the organisers gave it to us.
SEED = Path(__file__).resolve().parent / "data"
SAMPLE = Path(__file__).resolve().parent.parent / "events" / "journee-etude-mutualisation.toml"


def test_programme_shows_event_schedule_and_workshops(client, event):
    page = readable(client.get("/"))
    assert "Colloque sur les communs urbains" in page
    assert "Maison des associations" in page
    assert "Rue de l'Exemple 12, 4000 Liège" in page
    for title in ("Jardins partagés", "Habitat groupé", "Monnaies locales"):
        assert title in page
    assert '<time datetime="' in page
    assert 'name="csrf_token"' in page or 'name="first_name"' in page


def test_programme_without_event_is_a_clear_404(client):
    response = client.get("/")
    assert response.status_code == 404
    assert "Cette page n'existe pas." in readable(response)


def _visible_text(html: str) -> str:
    html = re.sub(r"<[^>]+>", " ", html)
    for entity, char in (("'", "'"), ("&#34;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
        html = html.replace(entity, char)
    return re.sub(r"\s+", " ", html)


def test_sample_event_page_has_every_line_of_the_seed(app, client):
    with app.app_context():
        load_event(db.session, tomllib.loads(SAMPLE.read_text()))
        db.session.commit()
    page = _visible_text(readable(client.get("/")))
    seed = (SEED / "journee-etude-mutualisation.txt").read_text()
    programme = seed[seed.index("Programme de la journée") : seed.index("Les ateliers")]
    for line in programme.splitlines():
        line = re.sub(r"\s+", " ", line).strip(" •").replace("Intervenants : ", "")
        if line:
            time_, _, title = line.partition(" : ")
            assert (title or time_).strip() in page, line
    workshops = seed[seed.index("Atelier 1 :") : seed.index("La table ronde")]
    descriptions = [
        p.strip() for p in workshops.split("\n\n") if p.strip() and not p.startswith("Atelier ")
    ]
    assert len(descriptions) == 6
    for description in descriptions:
        assert re.sub(r"\s+", " ", description).replace(" .", ".") in page.replace(" .", ".")
    for fact in (
        "mardi 23 avril 2024",
        "Campus du Solbosch",
        "Institut de Sociologie bâtiment S",
        "gratuite mais obligatoire",
        "un atelier par participant.e",
        "La table ronde",
        "Cette journée a eu lieu",
    ):
        assert fact in page, fact


def test_security_headers_on_every_response(client, event):
    for url in ("/", "/places", "/confidentialite", "/nowhere"):
        headers = client.get(url).headers
        policy = headers["Content-Security-Policy"]
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"]


def test_session_cookie_is_httponly_and_lax(client, event):
    response = client.get("/langue/en?next=/")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize(
    ("public_url", "sent"),
    [("https://journee.example.org", "max-age=31536000"), ("http://127.0.0.1:5000", None)],
)
def test_only_an_https_site_tells_browsers_to_keep_to_https(db_url, event, public_url, sent):
    from webapp import create_app
    from webapp.config import TestingConfig, database_url

    app = create_app(
        TestingConfig, {"SQLALCHEMY_DATABASE_URI": database_url(db_url), "PUBLIC_URL": public_url}
    )
    for url in ("/", "/places", "/nowhere"):
        assert app.test_client().get(url).headers.get("Strict-Transport-Security") == sent


def test_static_urls_change_with_the_files_content(client, event):
    """nginx lets browsers keep static files for a year: a changed file needs a new URL."""
    digest = hashlib.sha256((ROOT / "static/css/site.css").read_bytes()).hexdigest()[:12]
    assert f'href="/static/css/site.css?v={digest}"' in client.get("/").get_data(as_text=True)


def test_healthz_checks_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "rate_limit": "off"}


def test_privacy_page_says_what_why_and_how_long(client, event):
    page = readable(client.get("/confidentialite"))
    assert "Ce que nous conservons" in page
    assert "Pourquoi" in page
    assert "Combien de temps" in page
    assert "lunch" in page


def test_without_lunch_neither_the_form_nor_the_privacy_page_mention_it(client, event_factory):
    event_factory(event__lunch=False)
    assert 'name="lunch"' not in readable(client.get("/"))
    assert "lunch" not in readable(client.get("/confidentialite")).lower()


def test_form_fields_carry_the_documented_names(client, event):
    page = readable(client.get("/"))
    for name in registration_form():
        assert f'name="{name}"' in page, name


def test_healthz_says_503_when_the_database_is_gone(tmp_path):
    from webapp import create_app
    from webapp.config import TestingConfig

    missing = tmp_path / "no-such-dir" / "db.sqlite"
    app = create_app(TestingConfig, {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{missing}"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "database unavailable"}


def test_an_unknown_registration_link_keeps_the_event_and_its_contact(client, event):
    response = client.get("/inscription/not-a-real-token")
    assert response.status_code == 404
    page = readable(response)
    assert "Ce lien vers une inscription n'est pas valable" in page
    assert 'href="mailto:orga@colloque.test"' in page


def test_programme_items_show_their_end_time_when_known(client, event_factory):
    event_factory(
        programme=[
            {"starts": "10:30", "ends": "12:30", "title": "Ateliers", "kind": "workshops"},
            {"starts": "12:30", "title": "Repas", "kind": "break"},
        ]
    )
    page = readable(client.get("/"))
    assert ">10h30</time> – <time" in page and ">12h30</time>" in page


def test_the_first_of_the_month_is_written_1er_in_french(client, event_factory):
    event_factory(event__date="2027-05-01")
    assert "samedi 1er mai 2027" in readable(client.get("/"))
    assert "Saturday, 1 May 2027" in readable(client.get("/", headers={"Accept-Language": "en"}))
