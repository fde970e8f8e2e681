"""The public forms read text fields only: any other body gets a 415, and nothing is written."""

import io
import json

import pytest
from conftest import count, readable, registration_form
from itsdangerous import URLSafeTimedSerializer

NOT_TEXT = [1, {"a": "b"}, True, None, [[["deep"]]]]


def csrf_token(client) -> str:
    client.get("/")
    with client.session_transaction() as session:
        raw = session["csrf_token"]
    return URLSafeTimedSerializer(client.application.secret_key, salt="wtf-csrf-token").dumps(raw)


def assert_refused(response, app):
    assert response.status_code == 415
    assert "Cette page n'accepte que les formulaires du site, sans fichier joint." in readable(
        response
    )
    assert count(app, "SELECT count(*) FROM registration") == 0
    assert count(app, "SELECT count(*) FROM outbox_message") == 0


@pytest.mark.parametrize("value", [*NOT_TEXT, "a string"])
def test_a_json_registration_is_refused_whatever_it_holds(csrf_on, app, client, event, value):
    body = {**registration_form(), "first_name": value}
    response = client.post(
        "/inscription",
        data=json.dumps(body),
        content_type="application/json",
        headers={"X-CSRFToken": csrf_token(client)},
    )
    assert_refused(response, app)


def test_a_bare_json_value_or_deeply_nested_arrays_are_refused(csrf_on, app, client, event):
    token = csrf_token(client)
    for body in ('"bare"', "[" * 5000 + "]" * 5000, "true"):
        response = client.post(
            "/inscription", data=body, content_type="application/json",
            headers={"X-CSRFToken": token},
        )  # fmt: skip
        assert_refused(response, app)


def test_a_json_body_without_its_token_is_refused_too(csrf_on, app, client, event):
    response = client.post(
        "/inscription", data=json.dumps({"first_name": {"a": 1}}), content_type="application/json"
    )
    assert_refused(response, app)


def test_a_file_sent_in_place_of_a_text_field_is_refused(csrf_on, app, client, event):
    form = {**registration_form(), "csrf_token": csrf_token(client)}
    form["first_name"] = (io.BytesIO(b"Awa"), "prenom.txt")
    response = client.post("/inscription", data=form, content_type="multipart/form-data")
    assert_refused(response, app)


def test_a_plain_multipart_form_still_registers(csrf_on, app, client, event):
    form = {**registration_form(), "csrf_token": csrf_token(client)}
    response = client.post("/inscription", data=form, content_type="multipart/form-data")
    assert response.status_code == 303
    assert count(app, "SELECT count(*) FROM registration") == 1


def test_the_cancellation_refuses_a_json_body(app, client, event):
    client.post("/inscription", data=registration_form())
    token = count(app, "SELECT manage_token FROM registration")
    response = client.post(
        f"/inscription/{token}/annulation",
        data=json.dumps({"confirm": {"y": 1}}),
        content_type="application/json",
    )
    assert response.status_code == 415
    assert count(app, "SELECT status FROM registration") == "confirmed"
