"""Dashboard accounts: organisers and admins, their passwords and their sessions."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
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
    """The account cannot be created or changed as asked; the message says why (in English, for
    the terminal); each kind is its own class, so that the dashboard can say it in French."""


class InvalidEmailError(AccountError):
    pass


class PasswordTooShortError(AccountError):
    pass


class DuplicateEmailError(AccountError):
    pass


class WrongPasswordError(AccountError):
    pass


class OwnAccountError(AccountError):
    """An admin may not disable the account they are using."""


class LastAdminError(AccountError):
    """Without an active admin, nobody could manage the accounts from the dashboard."""


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(
    session: Session, actor: audit.Actor, email: str, password: str, role: Role
) -> User:
    email = normalise_email(email)
    local_part, _, domain = email.rpartition("@")
    if not local_part or not domain or len(email) > 320 or any(c.isspace() for c in email):
        raise InvalidEmailError(f"not an e-mail address: {email!r}")
    _check_password_length(password)
    if find_user(session, email) is not None:
        raise DuplicateEmailError(f"{email} already has an account")
    user = User(email=email, password_hash=hasher.hash(password), role=role, active=True)
    try:
        # The unique constraint decides when two admins create the same address at once.
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError as error:
        raise DuplicateEmailError(f"{email} already has an account") from error
    audit.record(
        session,
        actor,
        audit.AuditAction.USER_CREATED,
        f"{email} ({role})",
        after={"email": email, "role": role},
    )
    return user


def _check_password_length(password: str) -> None:
    if len(password) < MINIMUM_PASSWORD_LENGTH:
        raise PasswordTooShortError(
            f"the password needs at least {MINIMUM_PASSWORD_LENGTH} characters"
        )


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
    """Disables (or enables again) an account; a disabled user's sessions end at once.
    Refuses to disable the actor's own account or the last active admin."""
    if user.active == active:
        return
    if not active and actor.user_id == user.id:
        raise OwnAccountError(f"{user.email} cannot disable their own account")
    if not active and user.is_admin and _active_admin_count(session) <= 1:
        raise LastAdminError(f"{user.email} is the last active admin")
    user.active = active
    user.session_nonce = secrets.token_hex(16)
    audit.record(
        session,
        actor,
        audit.AuditAction.USER_ENABLED if active else audit.AuditAction.USER_DISABLED,
        user.email,
        before={"active": not active},
        after={"active": active},
    )


def _active_admin_count(session: Session) -> int:
    # Locks the active admins' rows (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises
    # writers), so that two admins disabling each other at once cannot leave none.
    admins = select(User.id).where(User.role == Role.ADMIN, User.active.is_(True))
    return len(session.scalars(admins.with_for_update()).all())


def change_password(session: Session, user: User, current_password: str, new_password: str) -> None:
    """Sets the user's own password; their other sessions end (a new nonce), so the caller
    logs the current one in again."""
    try:
        hasher.verify(user.password_hash, current_password)
    except (VerificationError, InvalidHashError) as error:
        raise WrongPasswordError("the current password is wrong") from error
    _check_password_length(new_password)
    user.password_hash = hasher.hash(new_password)
    user.session_nonce = secrets.token_hex(16)
    audit.record(session, audit.Actor.of(user), audit.AuditAction.USER_PASSWORD_CHANGED, user.email)


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
