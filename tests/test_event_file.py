"""Loading an event from TOML: `flask --app wsgi event load PATH [--date]`."""

import tomllib
from datetime import date, timedelta
from pathlib import Path

import tomli_w
from conftest import count, event_data, readable, registration_form

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "events" / "journee-etude-mutualisation.toml"


def write(tmp_path, data, name="event.toml") -> str:
    path = tmp_path / name
    path.write_bytes(tomli_w.dumps(data).encode())
    return str(path)


def load(runner, path, *options):
    return runner.invoke(args=["event", "load", path, *options])


def test_sample_event_loads_with_its_real_date_and_shows_registration_closed(app, runner, client):
    result = load(runner, str(SAMPLE))
    assert result.exit_code == 0, result.output
    assert "6 workshops, 7 programme items" in result.output
    assert count(app, "SELECT count(*) FROM workshop WHERE capacity = 25") == 6
    page = readable(client.get("/"))
    assert "mardi 23 avril 2024" in page
    assert "Cette journée a eu lieu" in page
    assert "Démo" not in page


def test_date_option_moves_the_event_and_says_so_on_the_page(app, runner, client):
    result = load(runner, str(SAMPLE), "--date", "+30d")
    assert result.exit_code == 0, result.output
    moved = date.today() + timedelta(days=30)
    assert moved.isoformat() in result.output
    page = readable(client.get("/"))
    assert "Démo : cette journée a eu lieu le mardi 23 avril 2024" in page
    assert 'name="first_name"' in page  # registration is open


def test_event_list_shows_every_event_and_the_one_the_site_serves(
    app, runner, client, event, event_factory
):
    event_factory(
        event__slug="colloque-2023", event__title="Édition 2023", event__date="2023-03-18"
    )
    client.post("/inscription", data=registration_form())
    day = (date.today() + timedelta(days=20)).isoformat()

    result = runner.invoke(args=["event", "list"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"* colloque-test: Colloque sur les communs urbains, {day}, 3 workshops, 1 registrations",
        "  colloque-2023: Édition 2023, 2023-03-18, 3 workshops, 0 registrations",
        "* the site serves colloque-test, the latest date (EVENT_SLUG to choose).",
    ]
    app.config["EVENT_SLUG"] = "colloque-2023"
    lines = runner.invoke(args=["event", "list"]).output.splitlines()
    assert lines[1].startswith("* colloque-2023: ")
    assert lines[2] == "* the site serves colloque-2023 (EVENT_SLUG)."
    app.config["EVENT_SLUG"] = "colloque-2099"
    lines = runner.invoke(args=["event", "list"]).output.splitlines()
    assert lines[2] == "EVENT_SLUG=colloque-2099 names no loaded event: the site answers 404."
    assert not any(line.startswith("*") for line in lines)


def test_event_list_without_events_says_how_to_load_one(runner):
    result = runner.invoke(args=["event", "list"])
    assert result.exit_code != 0
    assert "no event is loaded (flask --app wsgi event load PATH)" in result.output


def test_loading_again_updates_texts_and_capacities_and_keeps_registrations(
    app, runner, client, tmp_path
):
    data = event_data()
    path = write(tmp_path, data)
    assert load(runner, path).exit_code == 0
    client.post("/inscription", data=registration_form())
    data["event"]["title"] = "Colloque renommé"
    data["workshops"][0]["capacity"] = 8
    data["workshops"][0]["title"] = "Jardins partagés et compost"
    result = load(runner, write(tmp_path, data))
    assert result.exit_code == 0, result.output
    assert count(app, "SELECT count(*) FROM event") == 1
    assert count(app, "SELECT count(*) FROM registration") == 1
    assert count(app, "SELECT capacity FROM workshop WHERE number = 1") == 8
    assert count(app, "SELECT seats_taken FROM workshop WHERE number = 1") == 1
    page = readable(client.get("/"))
    assert "Colloque renommé" in page and "Jardins partagés et compost" in page
    # Who loaded it, from the terminal, and the capacity it changed, are in the audit log.
    changed = "SELECT actor FROM audit_entry WHERE action = :action ORDER BY id DESC LIMIT 1"
    assert count(app, changed, action="event.loaded").startswith("cli:")
    assert count(app, changed, action="workshop.capacity_changed").startswith("cli:")


def test_capacity_below_seats_taken_is_refused_and_changes_nothing(app, runner, client, tmp_path):
    data = event_data()
    load(runner, write(tmp_path, data))
    client.post("/inscription", data=registration_form(workshop="2", email="a@example.org"))
    client.post("/inscription", data=registration_form(workshop="2", email="b@example.org"))
    data["workshops"][1]["capacity"] = 1
    data["event"]["title"] = "Ne doit pas changer"
    result = load(runner, write(tmp_path, data))
    assert result.exit_code != 0
    assert "capacity 1 is below the 2 seats already taken" in result.output
    assert count(app, "SELECT capacity FROM workshop WHERE number = 2") == 3
    assert "Ne doit pas changer" not in readable(client.get("/"))


def test_removing_a_workshop_with_registrations_is_refused(app, runner, client, tmp_path):
    data = event_data()
    load(runner, write(tmp_path, data))
    client.post("/inscription", data=registration_form(workshop="3"))
    data["workshops"] = data["workshops"][:2]
    result = load(runner, write(tmp_path, data))
    assert result.exit_code != 0
    assert "workshop 3 is missing from the file" in result.output
    assert count(app, "SELECT count(*) FROM workshop") == 3


def test_registration_closes_by_default_at_the_start_of_the_event_day(app, runner, tmp_path):
    load(runner, write(tmp_path, event_data()))
    from webapp.extensions import db
    from webapp.models import Event

    with app.app_context():
        event = db.session.query(Event).one()
        closes = event.registration_closes.astimezone(event.zone)
        assert closes.date() == event.date and (closes.hour, closes.minute) == (0, 0)


def test_bad_files_get_clear_messages(app, runner, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[event\nslug = ")
    cases = [
        (str(tmp_path / "absent.toml"), "no such file"),
        (str(broken), "not valid TOML"),
        (write(tmp_path, {"event": {"slug": "x"}}, "a.toml"), "missing key 'date'"),
        (write(tmp_path, {"event": "x"}, "f.toml"), "[event] must be a table"),
        (write(tmp_path, event_data(event__starts="9h"), "b.toml"), "expected a time HH:MM"),
        (
            write(tmp_path, event_data(event__timezone="Mars/Olympus"), "c.toml"),
            "unknown time zone",
        ),
        (write(tmp_path, event_data(event__ends="08:00"), "d.toml"), "ends must come after starts"),
    ]
    listed_speakers = event_data()
    listed_speakers["programme"][0]["speakers"] = ["A", "B"]
    cases.append((write(tmp_path, listed_speakers, "g.toml"), "speakers: expected a string"))
    odd_kind = event_data()
    odd_kind["programme"][0]["kind"] = "party"
    cases.append((write(tmp_path, odd_kind, "h.toml"), "kind: one of"))
    cases.append((write(tmp_path, event_data(event__lunch="yes"), "i.toml"), "lunch: expected"))
    cases.append(
        (write(tmp_path, event_data(event__language="français"), "j.toml"), "language: a language")
    )
    cases.append(
        (write(tmp_path, event_data(event__language="fr\n"), "k.toml"), "language: a language")
    )
    duplicate = event_data()
    duplicate["workshops"][1]["number"] = 1
    cases.append((write(tmp_path, duplicate, "e.toml"), "workshop 1 appears twice"))
    for path, message in cases:
        result = load(runner, path)
        assert result.exit_code != 0, path
        assert message in result.output, (path, result.output)
    for bad_date in ("demain", "+9999999d"):
        result = load(runner, str(SAMPLE), "--date", bad_date)
        assert result.exit_code != 0 and "--date" in result.output, result.output
    assert count(app, "SELECT count(*) FROM event") == 0


def test_sample_file_describes_six_workshops_of_25_places():
    data = tomllib.loads(SAMPLE.read_text())
    assert [w["number"] for w in data["workshops"]] == [1, 2, 3, 4, 5, 6]
    assert data["event"]["capacity"] == 25
    assert data["event"]["date"] == date(2024, 4, 23)


def test_a_larger_capacity_gives_the_new_seats_to_the_waiting_list_in_order(
    app, runner, client, tmp_path
):
    data = event_data()
    load(runner, write(tmp_path, data))
    for email in ("seated@example.org", "first@example.org", "second@example.org"):
        client.post("/inscription", data=registration_form(workshop="3", email=email))
    data["workshops"][2]["capacity"] = 2
    result = load(runner, write(tmp_path, data))
    assert result.exit_code == 0, result.output
    assert "1 waiting participants got a seat" in result.output
    confirmed = "SELECT count(*) FROM registration WHERE status = 'confirmed' AND email = :email"
    assert count(app, confirmed, email="first@example.org") == 1
    assert count(app, confirmed, email="second@example.org") == 0
    assert count(app, "SELECT seats_taken FROM workshop WHERE number = 3") == 2
    assert (
        count(
            app,
            "SELECT count(*) FROM outbox_message WHERE kind = 'promoted' "
            "AND recipient = 'first@example.org' AND calendar IS NOT NULL",
        )
        == 1
    )


def test_readme_example_event_file_loads(app, runner, tmp_path):
    readme = (ROOT / "README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0].replace("…", "texte")
    path = tmp_path / "example.toml"
    path.write_text(example)
    result = load(runner, str(path))
    assert result.exit_code == 0, result.output


def test_a_past_event_promotes_nobody(app, runner, client, tmp_path):
    data = event_data()
    load(runner, write(tmp_path, data))
    for email in ("seated@example.org", "waiting@example.org"):
        client.post("/inscription", data=registration_form(workshop="3", email=email))
    data["event"]["date"] = "2020-01-15"
    data["workshops"][2]["capacity"] = 2
    result = load(runner, write(tmp_path, data))
    assert result.exit_code == 0, result.output
    assert "got a seat" not in result.output
    assert count(app, "SELECT count(*) FROM registration WHERE status = 'waitlisted'") == 1
