"""Settings, migrations and the application factory."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from webapp import config, create_app
from webapp.config import Config, TestingConfig, database_url
from webapp.extensions import db

ROOT = Path(__file__).resolve().parent.parent


def test_plain_postgresql_urls_use_the_installed_driver():
    assert database_url("postgresql://me@db/atelier") == "postgresql+psycopg://me@db/atelier"
    assert database_url("postgres://me@db/atelier") == "postgresql+psycopg://me@db/atelier"
    assert database_url("sqlite:////tmp/a.sqlite") == "sqlite:////tmp/a.sqlite"


class Production(Config):
    ENVIRONMENT = "production"
    SECRET_KEY = "production-secret-key"
    PUBLIC_URL = "https://journee.example.org"


def test_production_refuses_to_start_without_a_secret_key():
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(Production, {"SECRET_KEY": None})


def test_production_refuses_to_start_without_a_public_url():
    with pytest.raises(RuntimeError, match="PUBLIC_URL must be set in production"):
        create_app(Production, {"PUBLIC_URL": None})
    with pytest.raises(RuntimeError, match="PUBLIC_URL must be an absolute http"):
        create_app(Production, {"PUBLIC_URL": "journee.example.org"})


def test_no_command_runs_in_production_without_a_public_url(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "mail", "status"],
        cwd=ROOT,
        env={
            **os.environ,
            "ATELIER_ENV": "production",
            "SECRET_KEY": "production-secret-key",
            "PUBLIC_URL": "",  # set, so that a developer's .env cannot fill it in
            "DATABASE_URL": f"sqlite:///{tmp_path}/atelier.sqlite",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "PUBLIC_URL must be set in production" in result.stderr
    assert not result.stdout


def test_in_development_links_follow_the_dev_server_unless_public_url_is_set(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "INSTANCE", tmp_path)
    unset = {"PUBLIC_URL": None}
    assert create_app(TestingConfig, unset).config["PUBLIC_URL"] == "http://127.0.0.1:5000"
    config.record_development_public_url("http://127.0.0.1:5001")
    assert create_app(TestingConfig, unset).config["PUBLIC_URL"] == "http://127.0.0.1:5001"
    explicit = create_app(TestingConfig, {"PUBLIC_URL": "http://atelier.test/"})
    assert explicit.config["PUBLIC_URL"] == "http://atelier.test"


def test_session_cookie_is_secure_only_when_the_public_url_is_https():
    https = create_app(TestingConfig, {"PUBLIC_URL": "https://atelier.example.org/"})
    assert https.config["SESSION_COOKIE_SECURE"] is True
    assert https.config["PUBLIC_URL"] == "https://atelier.example.org"
    http = create_app(TestingConfig, {"PUBLIC_URL": "http://127.0.0.1:5000"})
    assert http.config["SESSION_COOKIE_SECURE"] is False


def test_migrations_match_the_models(app):
    """A model change without its migration fails here, on SQLite and PostgreSQL."""
    with app.app_context(), db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    app = create_app(TestingConfig, {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/a.sqlite"})
    with app.app_context(), db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_rate_limit_sees_the_client_behind_a_trusted_proxy(db_url, event):
    from conftest import registration_form

    app = create_app(
        TestingConfig,
        {
            "SQLALCHEMY_DATABASE_URI": database_url(db_url),
            "PROXY_COUNT": 1,
            "RATELIMIT_ENABLED": True,
            "REGISTRATION_RATE_LIMIT": "1 per minute",
        },
    )
    client = app.test_client()

    def post(client_address, email):
        return client.post(
            "/inscription",
            data=registration_form(email=email),
            headers={"X-Forwarded-For": client_address},
        ).status_code

    assert post("203.0.113.1", "a@example.org") == 303
    assert post("203.0.113.1", "b@example.org") == 429
    assert post("203.0.113.2", "c@example.org") == 303
