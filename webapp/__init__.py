"""Atelier: the programme of a study day and registrations for its parallel workshops."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import ROOT, Config, development_public_url, development_secret_key
from .database import sqlite_engine_options
from .extensions import babel, csrf, db, htmx, limiter, login_manager, mail, migrate
from .links import DatabaseIdConverter


def create_app(config: type[Config] = Config, overrides: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    app.url_map.converters["id"] = DatabaseIdConverter
    app.config.from_object(config)
    app.config.from_mapping(overrides or {})
    _ensure_public_url(app)
    app.config["SESSION_COOKIE_SECURE"] = app.config["PUBLIC_URL"].startswith("https://")
    _ensure_secret_key(app)
    if app.config["PROXY_COUNT"]:
        hops = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config.setdefault(
            "SQLALCHEMY_ENGINE_OPTIONS", sqlite_engine_options(app.config["SQLITE_BUSY_TIMEOUT"])
        )
        os.makedirs(app.instance_path, exist_ok=True)
    else:
        # A server restart or a dropped pooled connection must not fail the next request.
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})

    from . import i18n, models, security, snapshots, static_files  # noqa: F401  (models: tables)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    mail.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)
    htmx.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    security.init_app(app)
    static_files.init_app(app)
    i18n.init_app(app)
    snapshots.init_app(app)

    from .admin import admin
    from .cli import register_commands
    from .errors import register_error_handlers
    from .public import public
    from .public.seat_polls import SeatPolls

    app.register_blueprint(public)
    app.wsgi_app = SeatPolls(
        app.wsgi_app,
        app.extensions[snapshots.EXTENSION],
        app.config["LANGUAGES"],
        security.security_headers(app),
    )
    app.register_blueprint(admin)
    if app.config.get("MAIL_SINK_DIR") and app.config["ENVIRONMENT"] != "production":
        from .dev import dev

        app.register_blueprint(dev)
    register_error_handlers(app)
    register_commands(app)
    return app


def _ensure_public_url(app: Flask) -> None:
    url = app.config.get("PUBLIC_URL")
    app.config["PUBLIC_URL_FOLLOWS_DEV_SERVER"] = not url
    if not url:
        if app.config["ENVIRONMENT"] == "production":
            raise RuntimeError(
                "PUBLIC_URL must be set in production: e-mails link to it (see README, "
                "Configuration)."
            )
        url = development_public_url()
    if urlsplit(url).scheme not in {"http", "https"} or not urlsplit(url).hostname:
        raise RuntimeError(f"PUBLIC_URL must be an absolute http(s) URL, got {url!r}.")
    app.config["PUBLIC_URL"] = url.rstrip("/")


def _ensure_secret_key(app: Flask) -> None:
    if app.config.get("SECRET_KEY"):
        return
    if app.config["ENVIRONMENT"] == "production":
        raise RuntimeError("SECRET_KEY must be set in production (see README, Configuration).")
    app.config["SECRET_KEY"] = development_secret_key()
