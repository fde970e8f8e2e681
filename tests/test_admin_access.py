"""The dashboard is closed to anonymous visitors and to the wrong role, on every route."""

import re

import pytest
from conftest import PASSWORD, count, log_in, readable

from webapp.admin import OPEN_ENDPOINTS


def admin_urls(app):
    """Every admin endpoint with each method it takes, its URL built with sample values."""
    samples = {"int": "1", "id": "1", "string": "x", "default": "x"}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin.") or rule.endpoint in OPEN_ENDPOINTS:
            continue
        path = re.sub(
            r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>",
            lambda m: samples.get(m.group(1) or "default", "x"),
            rule.rule,
        )
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, path


def test_every_admin_route_sends_anonymous_visitors_to_the_login_page(app, client, event):
    urls = list(admin_urls(app))
    assert len(urls) >= 8
    for endpoint, method, path in urls:
        response = client.open(path, method=method)
        assert response.status_code == 303, (endpoint, method, path)
        assert response.headers["Location"].startswith("/admin/login"), endpoint
        htmx = client.open(path, method=method, headers={"HX-Request": "true"})
        assert htmx.status_code == 200, (endpoint, method)
        assert htmx.headers["HX-Redirect"].startswith("/admin/login"), endpoint
        assert htmx.get_data() == b""


def test_organisers_get_403_on_every_admins_only_route(app, organiser_client, event):
    admins_only = {
        endpoint
        for endpoint, view in app.view_functions.items()
        if getattr(view, "required_role", None) == "admin"
    }
    assert {"admin.exports", "admin.users"} <= admins_only
    for endpoint, method, path in admin_urls(app):
        if endpoint in admins_only:
            response = organiser_client.open(path, method=method)
            assert response.status_code == 403, (endpoint, method, path)


def test_an_organiser_sees_the_organisers_pages_but_not_the_admins_links(organiser_client, event):
    page = organiser_client.get("/admin/")
    assert page.status_code == 200
    text = readable(page)
    assert "Inscriptions" in text and "Accueil" in text
    assert "/admin/comptes" not in text and "/admin/exports" not in text


def test_every_admin_response_is_never_cached(admin_client, client, event):
    assert admin_client.get("/admin/").headers["Cache-Control"] == "no-store"
    assert client.get("/admin/login").headers["Cache-Control"] == "no-store"
    assert client.get("/admin/").headers["Cache-Control"] == "no-store"


def test_login_takes_the_user_to_the_page_they_asked_for(client, make_user, event):
    make_user("orga@atelier.test")
    asked = client.get("/admin/inscriptions")
    assert asked.status_code == 303
    response = client.post(
        asked.headers["Location"], data={"email": " Orga@Atelier.test ", "password": PASSWORD}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/inscriptions"
    assert client.get("/admin/inscriptions").status_code == 200


def test_the_session_is_renewed_at_login(client, make_user, event):
    make_user("orga@atelier.test")
    with client.session_transaction() as planted:
        planted["planted"] = "by someone else"
    assert log_in(client, "orga@atelier.test").status_code == 303
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"].startswith("1:")


def test_login_never_redirects_to_another_site(client, make_user, event):
    make_user("orga@atelier.test")
    response = client.post(
        "/admin/login?next=//evil.example/",
        data={"email": "orga@atelier.test", "password": PASSWORD},
    )
    assert response.headers["Location"] == "/admin/"


def test_a_wrong_email_and_a_wrong_password_get_the_same_answer(app, client, make_user, event):
    make_user("orga@atelier.test")
    wrong_password = log_in(client, "orga@atelier.test", "not the password at all")
    wrong_email = log_in(client, "nobody@atelier.test")
    assert wrong_password.status_code == wrong_email.status_code == 401
    assert "Adresse e-mail ou mot de passe incorrect." in readable(wrong_password)
    assert _without_tokens(wrong_password) == _without_tokens(wrong_email)
    assert client.get("/admin/").status_code == 303
    assert count(app, "SELECT count(*) FROM audit_entry WHERE action = 'user.login'") == 0


def _without_tokens(response) -> str:
    text = response.get_data(as_text=True)
    text = re.sub(r'value="[^"]*"', "", text)
    return re.sub(r'"X-CSRFToken": "[^"]*"', "", text)


def test_logout_is_a_post_and_ends_the_session(admin_client, event):
    assert admin_client.get("/admin/logout").status_code == 405
    response = admin_client.post("/admin/logout")
    assert response.status_code == 303
    assert admin_client.get("/admin/").status_code == 303


def test_a_disabled_account_is_thrown_out_at_its_next_request(app, organiser_client, runner, event):
    assert organiser_client.get("/admin/").status_code == 200
    result = runner.invoke(args=["users", "disable", "organiser@atelier.test"])
    assert result.exit_code == 0, result.output
    assert organiser_client.get("/admin/").status_code == 303
    assert log_in(organiser_client, "organiser@atelier.test").status_code == 401


@pytest.fixture
def login_rate_limit(config_overrides):
    config_overrides.update(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3 per 15 minutes")


def test_failed_logins_are_limited_per_client(login_rate_limit, client, make_user, event):
    make_user("orga@atelier.test")
    for attempt in range(3):
        assert log_in(client, f"guess{attempt}@atelier.test").status_code == 401
    assert log_in(client, "orga@atelier.test").status_code == 429


def test_failed_logins_are_limited_per_account_from_any_client(
    login_rate_limit, app, make_user, event
):
    make_user("orga@atelier.test")
    for attempt in range(3):
        other_client = app.test_client()
        response = other_client.post(
            "/admin/login",
            data={"email": "orga@atelier.test", "password": f"guess {attempt}"},
            environ_base={"REMOTE_ADDR": f"192.0.2.{attempt + 1}"},
        )
        assert response.status_code == 401
    blocked = app.test_client().post(
        "/admin/login",
        data={"email": "ORGA@atelier.test", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert blocked.status_code == 429
    other_account = app.test_client().post(
        "/admin/login",
        data={"email": "someone@atelier.test", "password": "x"},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert other_account.status_code == 401


def test_successful_logins_do_not_count_against_the_limit(
    login_rate_limit, client, make_user, event
):
    make_user("orga@atelier.test")
    for _ in range(5):
        assert log_in(client, "orga@atelier.test").status_code == 303


def test_every_admin_form_needs_its_csrf_token(csrf_on, app, make_user, event):
    make_user("orga@atelier.test", "admin")
    client = app.test_client()
    assert log_in(client, "orga@atelier.test").status_code == 400  # no token
    page = client.get("/admin/login")
    token = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    )
    response = client.post(
        "/admin/login",
        data={"email": "orga@atelier.test", "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert response.status_code == 303
    for endpoint, method, path in admin_urls(app):
        if method == "POST":
            assert client.post(path).status_code == 400, endpoint


def test_users_create_asks_for_the_password_twice(app, runner, event):
    typed = "a long enough password\na long enough password\n"
    result = runner.invoke(
        args=["users", "create", "new@atelier.test", "--role", "admin"], input=typed
    )
    assert result.exit_code == 0, result.output
    assert "a long enough password" not in result.output
    listing = runner.invoke(args=["users", "list"]).output
    assert re.search(r"new@atelier.test\s+admin\s+active", listing)
    mismatch = runner.invoke(
        args=["users", "create", "other@atelier.test", "--role", "organiser"],
        input="first password 123\nsecond password 45\nfirst password 123\nfirst password 123\n",
    )
    assert mismatch.exit_code == 0
    assert "do not match" in mismatch.output


def test_there_is_no_default_account_and_passwords_are_hashed(app, runner, client, event):
    assert count(app, "SELECT count(*) FROM user_account") == 0
    runner.invoke(
        args=["users", "create", "x@atelier.test", "--role", "admin", "--password-stdin"],
        input="a long enough password\n",
    )
    stored = count(app, "SELECT password_hash FROM user_account")
    assert stored.startswith("$argon2id$")
    assert log_in(client, "x@atelier.test", "a long enough password").status_code == 303


def test_a_number_too_large_for_the_database_in_an_admin_url_is_a_404(app, admin_client, event):
    """Ids beyond a 32-bit integer never reach PostgreSQL (which would refuse them: a 500)."""
    numbered = [
        (endpoint, method, path)
        for endpoint, method, path in admin_urls(app)
        if any(converter == "id" for converter in _converters(app, endpoint))
    ]
    assert len(numbered) >= 8
    for endpoint, method, path in numbered:
        too_large = path.replace("/1", "/2147483648", 1)
        assert admin_client.open(too_large, method=method).status_code == 404, endpoint


def _converters(app, endpoint):
    for rule in app.url_map.iter_rules(endpoint):
        yield from (
            type(c).__name__ == "DatabaseIdConverter" and "id" for c in rule._converters.values()
        )


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("email=a%00b%40x.test&password=whatever", "application/x-www-form-urlencoded"),
        ('{"email": 12, "password": "x"}', "application/json"),
        ('{"email": ["a"], "password": {"x": 1}}', "application/json"),
    ],
)
def test_login_refuses_what_it_cannot_read_without_an_error(client, event, body, content_type):
    response = client.post("/admin/login", data=body, content_type=content_type)
    assert 400 <= response.status_code < 500
    assert client.get("/admin/").status_code == 303


def test_a_deadlock_undone_by_the_database_asks_to_try_again(app, event):
    from psycopg.errors import DeadlockDetected
    from sqlalchemy.exc import OperationalError

    @app.get("/deadlock-for-the-test")
    def deadlock():
        raise OperationalError("UPDATE workshop …", {}, DeadlockDetected("deadlock detected"))

    response = app.test_client().get("/deadlock-for-the-test")
    assert response.status_code == 409
    assert "Une autre modification a eu lieu au même moment. Réessayez." in readable(response)
