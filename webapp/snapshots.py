"""What the public pages show, read at most once a second per process and rendered once per
change.

Every open programme page polls the seats every few seconds, so that poll must cost no query and
no rendering. Each process keeps a snapshot of the current event and its seats, never older than
AVAILABILITY_MAX_AGE_SECONDS, and the fragments and pages rendered from it, keyed by whatever
else they depend on (part, language…). A re-read whose content differs drops them. A commit in
this process (a registration, a cancellation) makes its next request re-read at once; other
processes and other servers see the change within the max age, with no signal to pass between
them and nothing to forget to bump: the content is the version.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from flask import Flask, abort, current_app, has_app_context
from sqlalchemy import Engine, create_engine, inspect
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.pool import NullPool

from .database import READ_ONLY
from .events import current_event_query
from .extensions import db
from .models import Event
from .registration import WorkshopAvailability, workshop_availability


@dataclass(frozen=True)
class Snapshot:
    """The event (detached from any session, its programme and workshops loaded) and the seats
    of its workshops, as they were when read; `version` changes whenever any of it does."""

    event: Event
    availability: tuple[WorkshopAvailability, ...]
    version: str


@dataclass(frozen=True)
class Rendered:
    version: str
    body: bytes
    etag: str


def _columns(instance) -> tuple:
    return tuple(getattr(instance, column.key) for column in inspect(instance).mapper.column_attrs)


def _version(event: Event, availability: tuple[WorkshopAvailability, ...]) -> str:
    content = (
        _columns(event),
        [_columns(item) for item in event.programme],
        [(_columns(a.workshop), a.seats_taken, a.waitlisted) for a in availability],
    )
    return hashlib.sha256(repr(content).encode()).hexdigest()[:32]


def read_snapshot(engine: Engine, event_slug: str | None) -> Snapshot | None:
    # A session of its own: the objects outlive the request that read them, and a commit of the
    # request's session cannot expire them.
    with Session(engine) as session:
        event = session.scalars(
            current_event_query(event_slug).options(
                selectinload(Event.programme), selectinload(Event.workshops)
            )
        ).first()
        if event is None:
            return None
        availability = tuple(workshop_availability(session, event))
        return Snapshot(event, availability, _version(event, availability))


class SnapshotCache:
    def __init__(self, max_age_seconds: float, read: Callable[[], Snapshot | None]):
        self.max_age_seconds = max_age_seconds
        self._read = read
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._read_at = -math.inf
        # A read that began before the last expiry may hold what a commit has since changed.
        self._expired_at = -math.inf
        self._rendered: dict[Hashable, Rendered] = {}

    def _is_fresh(self) -> bool:
        return (
            self._read_at > self._expired_at
            and time.monotonic() - self._read_at < self.max_age_seconds
        )

    def snapshot(self) -> Snapshot | None:
        if self._is_fresh():
            return self._snapshot
        with self._lock:
            if self._is_fresh():  # another thread re-read it while this one waited
                return self._snapshot
            read_at = time.monotonic()
            snapshot = self._read()
            if (
                snapshot is None
                or self._snapshot is None
                or snapshot.version != self._snapshot.version
            ):
                self._snapshot = snapshot
                self._rendered = {}
            self._read_at = read_at
            return self._snapshot

    def fresh(self, key: Hashable) -> Rendered | None:
        """What is already rendered for `key` from a snapshot still within the max age."""
        if not self._is_fresh():
            return None
        found, snapshot = self._rendered.get(key), self._snapshot
        if found is None or snapshot is None or found.version != snapshot.version:
            return None
        return found

    def rendered(self, key: Hashable, render: Callable[[Snapshot], str]) -> Rendered | None:
        """What `render` made of the current snapshot, made once per version and key."""
        snapshot = self.snapshot()
        if snapshot is None:
            return None
        found = self._rendered.get(key)
        if found is not None and found.version == snapshot.version:
            return found
        body = render(snapshot).encode()
        made = Rendered(snapshot.version, body, hashlib.sha256(body).hexdigest()[:32])
        self._rendered[key] = made
        return made

    def expire(self) -> None:
        self._expired_at = time.monotonic()


EXTENSION = "atelier.snapshots"


def snapshots() -> SnapshotCache:
    return current_app.extensions[EXTENSION]


def current_snapshot() -> Snapshot:
    snapshot = snapshots().snapshot()
    if snapshot is None:
        abort(404)
    return snapshot


def _expire_after_commit(_session) -> None:
    if has_app_context() and EXTENSION in current_app.extensions:
        snapshots().expire()


def init_app(app: Flask) -> None:
    engine = None

    def read() -> Snapshot | None:
        # Through an engine of its own, which only reads and sees only what is committed: a
        # request that holds a connection of the main pool (and, on SQLite, the write lock)
        # never waits for a second one. A connection per read (once a second at most) keeps
        # none open between reads, in gunicorn's forked workers or in tests.
        nonlocal engine
        if engine is None:
            engine = create_engine(
                app.config["SQLALCHEMY_DATABASE_URI"],
                **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
                poolclass=NullPool,
            ).execution_options(**READ_ONLY)
        return read_snapshot(engine, app.config.get("EVENT_SLUG"))

    app.extensions[EXTENSION] = SnapshotCache(app.config["AVAILABILITY_MAX_AGE_SECONDS"], read)
    if not sqlalchemy_event.contains(db.session, "after_commit", _expire_after_commit):
        sqlalchemy_event.listen(db.session, "after_commit", _expire_after_commit)
