"""One place where the storage's own errors become the ledger's (`domain.errors`).

The event store raises three families: the library's `PersistenceError` and its subclasses
(around the driver's, in its datastores), psycopg's and sqlite3's (where we use a driver
directly: probes, locks, LISTEN). This module says which of them are the storage's at all, as
against bugs (`STORAGE_ERRORS`), which mean the database is away or busy for a moment
(`TRANSIENT_ERRORS`), and how one becomes `StorageUnavailableError` in one sentence
(`unavailable`, `storage_failures`). The doors (`infrastructure.wiring`, the HTTP app and its
writer), the write attempts (`infrastructure.retrying`) and the views' storage use it; a
refusal of the data is each recorder's to recognise (`infrastructure.recorders`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError

from domain.errors import StorageUnavailableError, first_line

ErrorTypes = tuple[type[Exception], ...]

STORAGE_ERRORS: ErrorTypes = (PersistenceError, psycopg.Error, sqlite3.Error)
# The library's own, raised in place of the driver's: connection lost, timed out, locked.
LIBRARY_TRANSIENT_ERRORS: ErrorTypes = (OperationalError, InterfaceError)
TRANSIENT_ERRORS: ErrorTypes = (
    *LIBRARY_TRANSIENT_ERRORS,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,  # "database is locked"
)


def unavailable(sentence: str, error: BaseException) -> StorageUnavailableError:
    """``sentence: <the error's first line>`` as the ledger's error."""
    return StorageUnavailableError(f"{sentence}: {first_line(error)}")


@contextmanager
def storage_failures(sentence: str, *, also: ErrorTypes = ()) -> Iterator[None]:
    """Any storage error (and those in ``also``) raised inside becomes `unavailable`, without
    the driver's traceback: a door says it in one sentence."""
    try:
        yield
    except (*STORAGE_ERRORS, *also) as error:
        raise unavailable(sentence, error) from None


def sqlite_refused_lock(error: BaseException) -> bool:
    """SQLite said 'database is locked' at once instead of waiting (the library's error or
    the driver's)."""
    return isinstance(error, PersistenceError | sqlite3.OperationalError) and "locked" in str(error)
