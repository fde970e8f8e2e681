"""Admins manage the dashboard's accounts: create, disable, enable, their own password."""

import re

import pytest
from conftest import PASSWORD, count, log_in, readable

NEW_PASSWORD = "another long passphrase"


def account_form(**changes) -> dict:
    form = {
        "email": "Nouvelle.Orga@Atelier.test",
        "role": "organiser",
        "password": NEW_PASSWORD,
        "password_again": NEW_PASSWORD,
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def shown(response) -> str:
    """The words on the page, without the tags between them."""
    return " ".join(re.sub(r"<[^>]+>", " ", readable(response)).split())


def user_id(app, email: str) -> int:
    return count(app, "SELECT id FROM user_account WHERE email = :email", email=email)


def is_active(app, email: str) -> bool:
    return bool(count(app, "SELECT active FROM user_account WHERE email = :email", email=email))


def test_the_list_shows_every_account_with_its_role_state_and_last_login(
    admin_client, make_user, app, runner
):
    make_user("orga@atelier.test")
    runner.invoke(
        args=["users", "create", "old@atelier.test", "--role", "organiser", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    runner.invoke(args=["users", "disable", "old@atelier.test"])
    page = admin_client.get("/admin/comptes")
    assert page.status_code == 200
    text = shown(page)
    assert "admin@atelier.test (vous)" in text
    assert "orga@atelier.test" in text and "Organisateur·rice" in text
    assert "Désactivé" in text and "Réactiver" in text
    assert "jamais" in text  # orga never logged in


def test_an_admin_creates_an_account_that_can_log_in(app, admin_client, client):
    response = admin_client.post("/admin/comptes", data=account_form())
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/comptes"
    page = admin_client.get("/admin/comptes")
    assert "Compte créé pour nouvelle.orga@atelier.test (Organisateur·rice)." in readable(page)
    assert (
        count(app, "SELECT role FROM user_account WHERE email = 'nouvelle.orga@atelier.test'")
        == "organiser"
    )
    assert (
        count(
            app,
            "SELECT count(*) FROM audit_entry WHERE action = 'user.created' AND actor = :actor",
            actor="admin:admin@atelier.test",
        )
        == 1
    )
    assert log_in(client, "nouvelle.orga@atelier.test", NEW_PASSWORD).status_code == 303


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"email": "ADMIN@atelier.test "}, "Cette adresse a déjà un compte."),
        ({"email": "pas-une-adresse"}, "Cette adresse e-mail n'est pas valide."),
        ({"email": ""}, "Indiquez l'adresse e-mail."),
        (
            {"password": "court", "password_again": "court"},
            "Le mot de passe doit compter au moins 12 caractères.",
        ),
        (
            {"password_again": "something else entirely"},
            "Les deux mots de passe ne sont pas identiques.",
        ),
        ({"role": "superuser"}, "Choisissez un rôle."),
        ({"role": None}, "Choisissez un rôle."),
    ],
)
def test_a_wrong_account_form_says_what_to_correct_beside_the_field(
    app, admin_client, changes, message
):
    response = admin_client.post("/admin/comptes", data=account_form(**changes))
    assert response.status_code == 422
    text = readable(response)
    beside_fields = re.findall(r'<p class="field-error" id="[^"]+">([^<]*)</p>', text)
    assert message in beside_fields
    assert count(app, "SELECT count(*) FROM user_account") == 1
    assert NEW_PASSWORD not in text


def test_a_json_body_is_not_taken_for_the_form(app, admin_client):
    response = admin_client.post("/admin/comptes", json=account_form(role=True))
    assert response.status_code == 422
    assert count(app, "SELECT count(*) FROM user_account") == 1


def test_disabling_needs_the_confirmation_box(app, admin_client, make_user):
    make_user("orga@atelier.test")
    orga = user_id(app, "orga@atelier.test")
    refused = admin_client.post(f"/admin/comptes/{orga}/desactiver")
    assert refused.status_code == 422
    assert "Cochez la case pour confirmer la désactivation." in readable(refused)
    assert is_active(app, "orga@atelier.test")


def test_a_disabled_organiser_is_thrown_out_of_the_dashboard_and_can_come_back(
    app, admin_client, organiser_client, event
):
    assert organiser_client.get("/admin/").status_code == 200
    orga = user_id(app, "organiser@atelier.test")
    response = admin_client.post(f"/admin/comptes/{orga}/desactiver", data={"confirm": "y"})
    assert response.status_code == 303
    assert "Le compte organiser@atelier.test est désactivé" in readable(
        admin_client.get("/admin/comptes")
    )
    assert not is_active(app, "organiser@atelier.test")
    thrown_out = organiser_client.get("/admin/")
    assert thrown_out.status_code == 303
    assert thrown_out.headers["Location"].startswith("/admin/login")
    assert log_in(organiser_client, "organiser@atelier.test").status_code == 401

    assert admin_client.post(f"/admin/comptes/{orga}/activer").status_code == 303
    assert is_active(app, "organiser@atelier.test")
    assert log_in(organiser_client, "organiser@atelier.test").status_code == 303
    actions = count(
        app,
        "SELECT count(*) FROM audit_entry WHERE action IN ('user.disabled', 'user.enabled')"
        " AND actor = 'admin:admin@atelier.test'",
    )
    assert actions == 2


def test_an_admin_cannot_disable_their_own_account(app, admin_client, make_user):
    make_user("other-admin@atelier.test", "admin")
    own = user_id(app, "admin@atelier.test")
    response = admin_client.post(f"/admin/comptes/{own}/desactiver", data={"confirm": "y"})
    assert response.status_code == 409
    assert "Vous ne pouvez pas désactiver votre propre compte." in readable(response)
    assert is_active(app, "admin@atelier.test")
    assert admin_client.get("/admin/comptes").status_code == 200


def test_the_last_active_admin_cannot_be_disabled(app, admin_client, make_user, runner):
    make_user("second-admin@atelier.test", "admin")
    second = user_id(app, "second-admin@atelier.test")
    disabled = admin_client.post(f"/admin/comptes/{second}/desactiver", data={"confirm": "y"})
    assert disabled.status_code == 303
    refused = runner.invoke(args=["users", "disable", "admin@atelier.test"])
    assert refused.exit_code != 0
    assert "admin@atelier.test is the last active admin" in refused.output
    assert is_active(app, "admin@atelier.test")
    assert admin_client.get("/admin/comptes").status_code == 200


def test_an_unknown_account_is_404(admin_client):
    assert (
        admin_client.post("/admin/comptes/999999/desactiver", data={"confirm": "y"}).status_code
        == 404
    )
    assert admin_client.post("/admin/comptes/999999/activer").status_code == 404


def test_organisers_get_403_on_every_account_route(app, organiser_client, make_user):
    make_user("orga2@atelier.test")
    target = user_id(app, "orga2@atelier.test")
    assert organiser_client.get("/admin/comptes").status_code == 403
    assert organiser_client.post("/admin/comptes", data=account_form()).status_code == 403
    assert (
        organiser_client.post(
            f"/admin/comptes/{target}/desactiver", data={"confirm": "y"}
        ).status_code
        == 403
    )
    assert organiser_client.post(f"/admin/comptes/{target}/activer").status_code == 403
    assert organiser_client.post("/admin/comptes/mot-de-passe", data={}).status_code == 403
    assert is_active(app, "orga2@atelier.test")
    assert count(app, "SELECT count(*) FROM user_account") == 2


def test_an_admin_changes_their_password_and_their_other_sessions_end(app, admin_client):
    other_device = app.test_client()
    assert log_in(other_device, "admin@atelier.test").status_code == 303
    wrong = admin_client.post(
        "/admin/comptes/mot-de-passe",
        data={
            "current_password": "not it at all",
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
    )
    assert wrong.status_code == 422
    assert "Ce n'est pas votre mot de passe actuel." in readable(wrong)
    response = admin_client.post(
        "/admin/comptes/mot-de-passe",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
    )
    assert response.status_code == 303
    assert "Votre mot de passe est changé" in readable(admin_client.get("/admin/comptes"))
    assert other_device.get("/admin/comptes").status_code == 303
    assert log_in(other_device, "admin@atelier.test").status_code == 401
    assert log_in(other_device, "admin@atelier.test", NEW_PASSWORD).status_code == 303


def page_token(client, path: str) -> str:
    """The CSRF token of a page's forms."""
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', page).group(1)


def logged_in_with_csrf(app, email: str):
    """A client logged in through the login form with its token, as a browser does."""
    client = app.test_client()
    form = {"email": email, "password": PASSWORD, "csrf_token": page_token(client, "/admin/login")}
    assert client.post("/admin/login", data=form).status_code == 303
    return client


def test_creating_an_account_needs_the_csrf_token(csrf_on, app, make_user):
    client = logged_in_with_csrf(app, make_user("admin@atelier.test", "admin"))
    assert client.post("/admin/comptes", data=account_form()).status_code == 400
    assert count(app, "SELECT count(*) FROM user_account") == 1
    token = page_token(client, "/admin/comptes")
    assert client.post("/admin/comptes", data=account_form(csrf_token=token)).status_code == 303
    assert count(app, "SELECT count(*) FROM user_account") == 2
