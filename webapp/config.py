"""Settings, read once from the environment (and an optional .env file)."""

import os
import secrets
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"

load_dotenv(ROOT / ".env")


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def database_url(url: str) -> str:
    """Lets a plain postgresql:// URL use the psycopg 3 driver that we install."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def development_secret_key() -> str:
    """A key generated once into instance/ so that sessions survive restarts in development."""
    INSTANCE.mkdir(exist_ok=True)
    key_file = INSTANCE / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


DEV_SERVER_URL_FILE = "dev_server_url"


def development_public_url() -> str:
    """Where the links of `flask dev` lead (its own address, or PUBLIC_URL if it had one), as it
    recorded when it last started: the mails that any command queues lead to the running site."""
    recorded = INSTANCE / DEV_SERVER_URL_FILE
    return recorded.read_text().strip() if recorded.exists() else "http://127.0.0.1:5000"


def record_development_public_url(url: str) -> None:
    INSTANCE.mkdir(exist_ok=True)
    (INSTANCE / DEV_SERVER_URL_FILE).write_text(url + "\n")


class Config:
    ENVIRONMENT = os.environ.get("ATELIER_ENV", "development")
    SECRET_KEY = os.environ.get("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = database_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE / 'atelier.sqlite'}")
    )
    # Seconds a SQLite writer waits for the lock before giving up.
    SQLITE_BUSY_TIMEOUT = int(os.environ.get("SQLITE_BUSY_TIMEOUT", "30"))
    # Links in e-mails are fixed when the mail is queued. Required in production; unset
    # elsewhere, it is the address that `flask dev` serves at (see development_public_url).
    PUBLIC_URL = os.environ.get("PUBLIC_URL") or None
    EVENT_SLUG = os.environ.get("EVENT_SLUG")
    AVAILABILITY_POLL_SECONDS = int(os.environ.get("AVAILABILITY_POLL_SECONDS", "5"))
    # How stale the seats and the event that a server shows may be: each process re-reads them at
    # most this often (at once after its own changes), however many pages poll.
    AVAILABILITY_MAX_AGE_SECONDS = float(os.environ.get("AVAILABILITY_MAX_AGE_SECONDS", "1"))
    LAST_SEATS_THRESHOLD = int(os.environ.get("LAST_SEATS_THRESHOLD", "5"))
    REGISTRATION_RATE_LIMIT = os.environ.get("REGISTRATION_RATE_LIMIT", "10 per minute")
    # Failed dashboard logins, counted per client and per account.
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per 15 minutes")
    RATELIMIT_ENABLED = True
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    # Keys in a shared storage start with it, so that several sites can share one Redis.
    RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "atelier")
    # How long a request waits for Redis before it counts in its process's memory instead.
    RATELIMIT_STORAGE_TIMEOUT_SECONDS = float(
        os.environ.get("RATELIMIT_STORAGE_TIMEOUT_SECONDS", "0.5")
    )
    # Redis gone must not refuse registrations and logins: each process counts in memory (and
    # logs it once) until Redis answers again, tried after 1, 2, 4… 32 seconds.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto headers are trusted, so
    # that the rate limit sees each client's own address.
    PROXY_COUNT = int(os.environ.get("PROXY_COUNT", "0"))
    RATELIMIT_HEADERS_ENABLED = True

    MAIL_SERVER = os.environ.get("MAIL_SERVER", "127.0.0.1")
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "8025"))
    MAIL_USE_TLS = _bool("MAIL_USE_TLS", False)
    MAIL_USE_SSL = _bool("MAIL_USE_SSL", False)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "Atelier <atelier@localhost>")
    MAIL_TIMEOUT_SECONDS = int(os.environ.get("MAIL_TIMEOUT_SECONDS", "20"))
    MAIL_SUPPRESS_SEND = False
    MAIL_RETRY_BASE_SECONDS = int(os.environ.get("MAIL_RETRY_BASE_SECONDS", "60"))
    MAIL_RETRY_MAX_SECONDS = int(os.environ.get("MAIL_RETRY_MAX_SECONDS", "3600"))
    MAIL_GIVE_UP_AFTER_SECONDS = int(os.environ.get("MAIL_GIVE_UP_AFTER_SECONDS", "86400"))
    # Renewed when half has gone; one message may take several SMTP timeouts, so keep it at
    # least 10 times MAIL_TIMEOUT_SECONDS (the worker warns otherwise).
    MAIL_LEASE_SECONDS = int(os.environ.get("MAIL_LEASE_SECONDS", "300"))
    MAIL_BATCH_SIZE = int(os.environ.get("MAIL_BATCH_SIZE", "100"))
    MAIL_SEND_INTERVAL_SECONDS = int(os.environ.get("MAIL_SEND_INTERVAL_SECONDS", "5"))
    # Shows received mails at /dev/mails when the local SMTP sink of `make run` writes them.
    MAIL_SINK_DIR = os.environ.get("MAIL_SINK_DIR")
    # Registrations (and the e-mails naming them) are deleted this long after their event.
    RETENTION_DAYS_AFTER_EVENT = int(os.environ.get("RETENTION_DAYS_AFTER_EVENT", "90"))
    REMINDER_DAYS_BEFORE = int(os.environ.get("REMINDER_DAYS_BEFORE", "2"))
    REMINDER_TIME = os.environ.get("REMINDER_TIME", "09:00")

    BABEL_DEFAULT_LOCALE = "fr"
    BABEL_TRANSLATION_DIRECTORIES = str(ROOT / "translations")
    LANGUAGES = ("fr", "en")

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None
    MAX_CONTENT_LENGTH = 64 * 1024


class TestingConfig(Config):
    TESTING = True
    ENVIRONMENT = "testing"
    SECRET_KEY = "testing-secret-key"
    WTF_CSRF_ENABLED = False
    RATELIMIT_ENABLED = False
    MAIL_SUPPRESS_SEND = False
    # A test that changes the database behind the app's back sees it on the next request.
    AVAILABILITY_MAX_AGE_SECONDS = 0
