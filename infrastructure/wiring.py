"""Building the Ledger from Settings, with store failures turned into one clear sentence."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg

from domain.errors import NoLedgerError
from domain.ledger import Ledger
from infrastructure.retrying import ConflictAttempts, system_clock
from infrastructure.settings import Settings
from infrastructure.storage_errors import STORAGE_ERRORS, sqlite_refused_lock, storage_failures

LEDGER_TABLE = "ledger_inbox"  # made with the event store, in the same DDL, on both stores


@contextmanager
def open_ledger(settings: Settings, *, create: bool = True) -> Iterator[Ledger]:
    """A Ledger on the configured store, closed afterwards. With ``create``, its tables are
    made on first use; without, a store that holds no ledger is `NoLedgerError` and is left
    untouched (a mistyped path must not become an empty ledger that verifies)."""
    with storage_failures(
        f"cannot open the ledger database {settings.display_db}", also=(OSError,)
    ):
        if settings.is_postgres:
            # Probe first: the library's pool would wait out its timeout and only say so.
            _connect_postgres(settings).close()
        if not create and not _holds_ledger(settings):
            where = settings.display_db if settings.is_postgres else _sqlite_path(settings)
            raise NoLedgerError(f"no ledger at {where}: 'partner-ledger ingest' creates one")
        _prepare_sqlite(settings)
        ledger = _started(settings)
    try:
        with storage_failures(f"the ledger database {settings.display_db} failed"):
            yield ledger
    finally:
        ledger.close()


STARTUP_SECONDS = 15.0


def _started(settings: Settings) -> Ledger:
    """The Ledger, its tables made when missing. On SQLite, processes starting together on a
    new file can meet a lock that SQLite refuses at once instead of waiting for ("database is
    locked": one of them read the schema, then needs to write it): start-up is idempotent, so
    it is tried again, for at most `STARTUP_SECONDS`."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            return Ledger(
                env=settings.eventsourcing_env(), clock=system_clock, attempts=ConflictAttempts()
            )
        except STORAGE_ERRORS as error:
            if (
                settings.is_postgres
                or not sqlite_refused_lock(error)
                or time.monotonic() > deadline
            ):
                raise
            time.sleep(random.uniform(0.02, 0.2))


def _sqlite_path(settings: Settings) -> str:
    return settings.eventsourcing_env()["SQLITE_DBNAME"]


def _holds_ledger(settings: Settings) -> bool:
    """Whether the store has the ledger's tables; creates nothing (not even a file)."""
    if settings.is_postgres:
        with _connect_postgres(settings) as server:
            row = server.execute("SELECT to_regclass(%s) IS NOT NULL", (LEDGER_TABLE,)).fetchone()
            return bool(row and row[0])
    try:  # mode=rw: open an existing file, never create one
        connection = sqlite3.connect(f"file:{quote(_sqlite_path(settings))}?mode=rw", uri=True)
    except sqlite3.OperationalError:
        return False
    try:
        found = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LEDGER_TABLE,)
        ).fetchone()
    finally:
        connection.close()
    return found is not None


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


def _connect_postgres(settings: Settings) -> psycopg.Connection[tuple[object, ...]]:
    """A connection of our own, on the settings the library's pool uses."""
    env = settings.eventsourcing_env()
    return psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"],
        connect_timeout=settings.connect_timeout_seconds,
    )
