"""The rate limit kept in Redis, shared by several servers, and what happens when Redis goes."""

import socket

import pytest
from conftest import count, free_port, log_in, registration_form

from webapp import create_app
from webapp.config import TestingConfig


@pytest.fixture
def silent_redis() -> str:
    """A port that accepts connections and never answers, like a hung host."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


@pytest.fixture(params=["refused", "silent"])
def gone_redis(request, config_overrides) -> None:
    if request.param == "refused":
        url = f"redis://127.0.0.1:{free_port()}/0"
    else:
        url = request.getfixturevalue("silent_redis")
    config_overrides.update(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=url,
        RATELIMIT_STORAGE_TIMEOUT_SECONDS=0.2,
        REGISTRATION_RATE_LIMIT="2 per minute",
        LOGIN_RATE_LIMIT="2 per 15 minutes",
    )


def test_registration_goes_through_when_the_limiters_redis_is_gone(gone_redis, app, client, event):
    response = client.post("/inscription", data=registration_form())
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/inscription/confirmation")
    assert count(app, "SELECT count(*) FROM outbox_message WHERE kind = 'confirmation'") == 1


def test_without_redis_the_limit_counts_in_memory_and_says_so_once(
    gone_redis, client, event, caplog
):
    statuses = [
        client.post("/inscription", data=registration_form(email=f"p{i}@example.org")).status_code
        for i in range(3)
    ]
    assert statuses == [303, 303, 429]
    warnings = [r for r in caplog.records if "falling back to in-memory" in r.getMessage()]
    assert len(warnings) == 1


def test_failed_logins_are_still_limited_without_redis(gone_redis, client, make_user, event):
    make_user("orga@atelier.test")
    assert log_in(client, "orga@atelier.test", "wrong").status_code == 401
    assert log_in(client, "orga@atelier.test", "wrong again").status_code == 401
    assert log_in(client, "orga@atelier.test").status_code == 429


def test_healthz_stays_up_but_says_degraded_without_the_limiters_redis(gone_redis, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "degraded", "rate_limit": "unreachable"}


def test_the_limit_counts_in_redis_across_servers(redis_rate_limit, app, event):
    # A server whose Redis was gone before, in this process, must not leave the next one counting
    # in memory.
    gone = create_app(
        TestingConfig,
        {
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{free_port()}/0",
        },
    )
    assert gone.test_client().post("/inscription", data=registration_form()).status_code == 303

    def server():
        return create_app(
            TestingConfig,
            {
                "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
                "RATELIMIT_ENABLED": True,
                "RATELIMIT_STORAGE_URI": app.config["RATELIMIT_STORAGE_URI"],
                "RATELIMIT_KEY_PREFIX": redis_rate_limit,
                "REGISTRATION_RATE_LIMIT": "2 per minute",
            },
        ).test_client()

    first = server()
    assert first.get("/healthz").json == {"status": "ok", "rate_limit": "shared"}
    for person in ("a", "b"):
        response = first.post("/inscription", data=registration_form(email=f"{person}@example.org"))
        assert response.status_code == 303
    # A second server (its own memory, fresh) sees the count the first one left in Redis.
    second = server()
    response = second.post("/inscription", data=registration_form(email="c@example.org"))
    assert response.status_code == 429
