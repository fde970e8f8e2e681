"""Dashboard accounts: organisers and admins, their passwords and their sessions."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .database import utcnow
from .models import Role, User
from .registration import normalise_email

# argon2-cffi's defaults exceed OWASP's minimum (Werkzeug's scrypt defaults do not).
hasher = PasswordHasher()
# Verified when the e-mail is unknown, so that a wrong e-mail takes as long as a wrong password.
_UNKNOWN_USER_HASH = hasher.hash(secrets.token_urlsafe(16))

MINIMUM_PASSWORD_LENGTH = 12


class AccountError(Exception):
    """The account cannot be created or changed as asked; the message says why."""


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(
    session: Session, actor: audit.Actor, email: str, password: str, role: Role
) -> User:
    email = normalise_email(email)
    if "@" not in email or len(email) > 320:
        raise AccountError(f"not an e-mail address: {email!r}")
    if len(password) < MINIMUM_PASSWORD_LENGTH:
        raise AccountError(f"the password needs at least {MINIMUM_PASSWORD_LENGTH} characters")
    if find_user(session, email) is not None:
        raise AccountError(f"{email} already has an account")
    user = User(email=email, password_hash=hasher.hash(password), role=role, active=True)
    session.add(user)
    session.flush()
    audit.record(
        session, actor, "user.created", f"{email} ({role})", after={"email": email, "role": role}
    )
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this e-mail and password, else None, in about the same time
    whether the e-mail is unknown, the account disabled or the password wrong."""
    user = find_user(session, email)
    try:
        hasher.verify(user.password_hash if user else _UNKNOWN_USER_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    user.last_login_at = utcnow()
    return user


def set_active(session: Session, actor: audit.Actor, user: User, active: bool) -> None:
    """Disables (or enables again) an account; a disabled user's sessions end at once."""
    if user.active == active:
        return
    user.active = active
    user.session_nonce = secrets.token_hex(16)
    audit.record(
        session,
        actor,
        "user.enabled" if active else "user.disabled",
        user.email,
        before={"active": not active},
        after={"active": active},
    )


def load_session_user(session: Session, session_id: str) -> User | None:
    """The user named by a session's id ("<id>:<nonce>"), if still active and still valid."""
    user_id, _, nonce = session_id.partition(":")
    if not user_id.isdigit():
        return None
    user = session.get(User, int(user_id))
    if user is None or not user.active or not secrets.compare_digest(user.session_nonce, nonce):
        return None
    return user


def all_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))
