"""Extension objects, created here and bound to the app in the factory."""

import logging
from urllib.parse import urlsplit

import flask_limiter
from flask import Flask
from flask_babel import Babel
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from limits.storage import RedisStorage
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Limiter(flask_limiter.Limiter):
    """Flask-Limiter's limiter, set up afresh by each app it is bound to, with short timeouts for
    Redis and its messages in the app's log."""

    def init_app(self, app: Flask) -> None:
        # The library keeps the first app's key prefix and storage options, and whether it last
        # found its storage dead: one process serves one app in production, but tests make many.
        self._key_prefix = ""
        self._storage_options = {}
        self._storage_dead = False
        if urlsplit(app.config["RATELIMIT_STORAGE_URI"]).scheme in RedisStorage.STORAGE_SCHEME:
            timeout = app.config["RATELIMIT_STORAGE_TIMEOUT_SECONDS"]
            app.config.setdefault(
                "RATELIMIT_STORAGE_OPTIONS",
                {"socket_connect_timeout": timeout, "socket_timeout": timeout},
            )
        super().init_app(app)
        # Its own logger has a NullHandler, which hides its warnings where logging is not
        # configured (gunicorn): the switch to memory would go unseen. Not app.logger itself:
        # creating it now would give it a handler before the mail worker configures logging.
        self.logger = logging.getLogger(f"{app.name}.rate_limit")
        self.logger.setLevel(logging.INFO)

    def _check_request_limit(self, callable_name=None, in_middleware=True) -> None:
        # Every limit here is on a view (registration, login), whose decorator checks it; with no
        # default or application-wide limit, the check the library makes before every request
        # would find nothing, at a cost of about a tenth of a millisecond on every page.
        if not in_middleware:
            super()._check_request_limit(callable_name, in_middleware)

    def storage_state(self, app: Flask) -> str:
        """Where the counts are kept now: "shared" (the storage answers), "unreachable" (each
        process counts in its own memory until it answers), "memory" (per process, as
        configured) or "off"."""
        if not app.config["RATELIMIT_ENABLED"]:
            return "off"
        if urlsplit(app.config["RATELIMIT_STORAGE_URI"]).scheme == "memory":
            return "memory"
        return "shared" if self.storage.check() else "unreachable"


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
mail = Mail()
csrf = CSRFProtect()
babel = Babel()
htmx = Htmx()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


login_manager = LoginManager()
