"""Admins export the registrations as CSV and print attendance sheets."""

import csv
import io

import pytest
from conftest import readable

from webapp.audit import SYSTEM
from webapp.extensions import db
from webapp.models import Registration
from webapp.registration import cancel_registration


def exported_rows(response, separator=";") -> list[list[str]]:
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=separator))


def as_dicts(rows: list[list[str]]) -> list[dict[str, str]]:
    header, *data = rows
    return [dict(zip(header, row, strict=True)) for row in data]


@pytest.mark.parametrize(
    ("organisation", "cell"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+32 4 123", "'+32 4 123"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(1+1)*cmd", "'@SUM(1+1)*cmd"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("ASBL = Quartiers", "ASBL = Quartiers"),
    ],
)
def test_a_cell_that_a_spreadsheet_would_run_opens_as_text(
    admin_client, add_registration, organisation, cell
):
    add_registration(organisation=organisation)
    response = admin_client.get("/admin/exports/inscriptions.csv")
    assert response.status_code == 200
    [row] = as_dicts(exported_rows(response))
    assert row["Organisation"] == cell


def test_the_export_is_utf8_with_a_bom_and_keeps_every_name(admin_client, add_registration):
    add_registration("Zoë", "Ŵilliams-Ångström", organisation="Maison «Ça ira» – 日本")
    response = admin_client.get("/admin/exports/inscriptions.csv")
    assert response.is_streamed
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and "inscriptions-colloque-test.csv" in disposition
    [row] = as_dicts(exported_rows(response))
    assert (row["Prénom"], row["Nom"]) == ("Zoë", "Ŵilliams-Ångström")
    assert row["Organisation"] == "Maison «Ça ira» – 日本"


def test_the_export_lists_live_registrations_with_their_place(app, admin_client, add_registration):
    add_registration("Awa", "Diallo", workshop=3, dietary="végétarien")
    add_registration("Noé", "Martin", workshop=3, lunch=False)  # workshop 3 has one seat
    gone = add_registration("Léa", "Dubois", workshop=1)
    with app.app_context():
        cancel_registration(db.session, db.session.get(Registration, gone), SYSTEM)
        db.session.commit()
    rows = as_dicts(exported_rows(admin_client.get("/admin/exports/inscriptions.csv")))
    assert [(r["Atelier"], r["Nom"], r["Statut"], r["Position d'attente"]) for r in rows] == [
        ("3", "Diallo", "Confirmée", ""),
        ("3", "Martin", "Liste d'attente", "1"),
    ]
    awa, noe = rows
    assert awa["Titre de l'atelier"] == "Monnaies locales"
    assert (awa["Lunch"], awa["Régime alimentaire"], noe["Lunch"]) == ("Oui", "végétarien", "Non")
    assert awa["E-mail"] == "person1@example.org"
    assert len(awa["Inscription"]) == len("2026-05-01 09:30") and awa["Arrivée"] == ""


def test_the_separator_can_be_a_comma(admin_client, add_registration):
    add_registration("Awa", "Diallo", organisation="Quartiers, Liège")
    response = admin_client.get("/admin/exports/inscriptions.csv?workshop=&separator=,")
    rows = exported_rows(response, separator=",")
    assert rows[0][:3] == ["Atelier", "Titre de l'atelier", "Statut"]
    assert as_dicts(rows)[0]["Organisation"] == "Quartiers, Liège"
    semicolon = admin_client.get("/admin/exports/inscriptions.csv?separator=;")
    assert semicolon.get_data(as_text=True).lstrip("\ufeff").startswith("Atelier;Titre")


def test_one_workshop_can_be_exported_alone(admin_client, add_registration):
    add_registration("Awa", "Diallo", workshop=1)
    add_registration("Noé", "Martin", workshop=2)
    response = admin_client.get("/admin/exports/inscriptions.csv?workshop=2&separator=;")
    assert "inscriptions-colloque-test-atelier-2.csv" in response.headers["Content-Disposition"]
    assert [r["Nom"] for r in as_dicts(exported_rows(response))] == ["Martin"]


def test_an_event_without_lunch_has_no_lunch_column(app, admin_client, event_factory):
    event_factory(event__lunch=False)
    header = exported_rows(admin_client.get("/admin/exports/inscriptions.csv"))[0]
    assert "Lunch" not in header and "Régime alimentaire" in header


@pytest.mark.parametrize(
    "query",
    [
        "workshop=9",
        "workshop=abc",
        "workshop=1.5",
        "separator=%09",
        "separator=|",
        "workshop=%00&separator=;",
    ],
)
def test_garbage_parameters_get_a_french_400(admin_client, event, query):
    response = admin_client.get(f"/admin/exports/inscriptions.csv?{query}")
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Choisissez" in readable(response)


def test_the_exports_page_offers_the_choices(admin_client, event):
    page = admin_client.get("/admin/exports")
    text = readable(page)
    assert page.status_code == 200
    assert 'action="/admin/exports/inscriptions.csv"' in page.get_data(as_text=True)
    assert "Point-virgule" in text and "Atelier 2 : Habitat groupé" in text
    assert "/admin/exports/emargement/3" in page.get_data(as_text=True)


def test_the_attendance_sheet_lists_exactly_the_seated_people_of_its_workshop(
    app, admin_client, add_registration
):
    add_registration("Zoé", "Zeller", organisation="Commune de Namur", workshop=1)
    add_registration("Émile", "Étienne", workshop=1)
    add_registration("Awa", "Bah", workshop=1)
    add_registration("Noé", "Martin", workshop=2)
    add_registration("Ines", "Seule", workshop=3)
    add_registration("Paul", "Attente", workshop=3)  # waiting: no seat, no line
    gone = add_registration("Léa", "Annulée", workshop=1)
    with app.app_context():
        cancel_registration(db.session, db.session.get(Registration, gone), SYSTEM)
        db.session.commit()

    sheet = admin_client.get("/admin/exports/emargement/1")
    assert sheet.status_code == 200
    text = readable(sheet)
    assert "Atelier 1 : Jardins partagés" in text and "Colloque sur les communs urbains" in text
    assert "Imprimer" in text and "admin-exports.css" in sheet.get_data(as_text=True)
    names = ["Bah", "Étienne", "Zeller"]
    assert [text.index(name) for name in names] == sorted(text.index(name) for name in names)
    assert "Commune de Namur" in text and "3 participant·e·s confirmé·e·s" in text
    for absent in ("Martin", "Seule", "Attente", "Annulée"):
        assert absent not in text

    assert "Seule" in readable(admin_client.get("/admin/exports/emargement/3"))
    assert "Attente" not in readable(admin_client.get("/admin/exports/emargement/3"))
    assert admin_client.get("/admin/exports/emargement/9").status_code == 404


def test_organisers_cannot_export(organiser_client, add_registration):
    add_registration()
    for path in (
        "/admin/exports",
        "/admin/exports/inscriptions.csv",
        "/admin/exports/emargement/1",
    ):
        response = organiser_client.get(path)
        assert response.status_code == 403, path
        assert "Diallo" not in response.get_data(as_text=True)
