"""Database engine settings that keep SQLite safe under concurrent registrations."""

import sqlite3
from datetime import UTC, datetime

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator


def sqlite_engine_options(busy_timeout_seconds: int) -> dict:
    connect_args: dict = {"timeout": busy_timeout_seconds, "check_same_thread": False}
    if hasattr(sqlite3, "LEGACY_TRANSACTION_CONTROL"):
        # Python 3.12+: keep the driver from emitting its own deferred BEGIN (see PITFALLS).
        connect_args["autocommit"] = sqlite3.LEGACY_TRANSACTION_CONTROL
    return {"connect_args": connect_args}


@event.listens_for(Engine, "connect")
def _configure_sqlite_connection(dbapi_connection, _record):
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # We emit BEGIN ourselves (below); the driver must not start transactions on its own.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Execution options of an engine or connection that only reads (see webapp.snapshots).
READ_ONLY = {"atelier_read_only": True}


@event.listens_for(Engine, "begin")
def _begin_sqlite_immediately(connection):
    # A deferred transaction that reads and then writes fails with "database is locked" when
    # another writer got there first; taking the write lock at BEGIN makes writers queue instead
    # (SQLAlchemy's pysqlite transaction recipe). A reader never waits for writers under WAL.
    if connection.dialect.name == "sqlite":
        read_only = connection.get_execution_options().get("atelier_read_only")
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes stored in UTC, also on SQLite which keeps no offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
