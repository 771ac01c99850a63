"""Building the Ledger from Settings, with store failures turned into one clear sentence."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from eventsourcing.persistence import PersistenceError

from domain.errors import StorageUnavailableError
from domain.ledger import Ledger
from infrastructure.settings import Settings


@contextmanager
def open_ledger(settings: Settings) -> Iterator[Ledger]:
    """A Ledger on the configured store (tables created on first use), closed afterwards."""
    # Probe first: the library's pool would wait out its timeout and then only say so.
    reason = _postgres_reason(settings)
    if reason:
        raise StorageUnavailableError(
            f"cannot open the ledger database {settings.display_db}: {reason}"
        )
    try:
        _prepare_sqlite(settings)
        ledger = Ledger(env=settings.eventsourcing_env())
    except (PersistenceError, sqlite3.Error, OSError) as error:
        raise StorageUnavailableError(
            f"cannot open the ledger database {settings.display_db}: {_first_line(error)}"
        ) from None
    try:
        yield ledger
    except (PersistenceError, sqlite3.Error, psycopg.Error) as error:
        raise StorageUnavailableError(
            f"the ledger database {settings.display_db} failed: {_first_line(error)}"
        ) from None
    finally:
        ledger.close()


def _prepare_sqlite(settings: Settings) -> None:
    """Switch a new SQLite file to WAL once, up front. The library switches each pool's
    first connection, and several processes doing that at once can fail with 'locked'."""
    path = settings.eventsourcing_env().get("SQLITE_DBNAME")
    if path is None:
        return
    connection = sqlite3.connect(path, timeout=30)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def _postgres_reason(settings: Settings) -> str | None:
    """The server's own words for a failed connection (the pool only says it timed out)."""
    if not settings.is_postgres:
        return None
    env = settings.eventsourcing_env()
    try:
        psycopg.connect(
            dbname=env["POSTGRES_DBNAME"],
            host=env["POSTGRES_HOST"],
            port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"],
            connect_timeout=settings.connect_timeout_seconds,
        ).close()
    except psycopg.Error as error:
        return _first_line(error)
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
