"""One place where the storage's own errors become the ledger's (`domain.errors`).

The event store raises three families: the library's `PersistenceError` and its subclasses
(around the driver's, in its datastores), psycopg's and sqlite3's (where we use a driver
directly: probes, locks, LISTEN). This module says which of them are the storage's at all, as
against bugs (`STORAGE_ERRORS`), which mean the database is away or busy for a moment
(`TRANSIENT_ERRORS`), and how one becomes `StorageUnavailableError` in one sentence
(`unavailable`, `storage_failures`), and which refuse the data itself, so that retrying
cannot help (`refused`: `StoreRefusedError`). The doors (`infrastructure.wiring`, the HTTP app
and its writer), the write attempts (`infrastructure.retrying`), the views' storage and both
recorders use it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError

from domain.errors import StorageUnavailableError, StoreRefusedError, first_line

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

# PostgreSQL SQLSTATE classes that refuse the data itself: 22 data exception, 54 program limit
# exceeded (e.g. an index row too large).
REFUSING_SQLSTATE_CLASSES = frozenset({"22", "54"})
# SQLite's equivalents: SQLITE_TOOBIG, SQLITE_MISMATCH, and SQLITE_CONSTRAINT_TRIGGER (the only
# way an SQLite trigger can refuse a value). Unique and primary-key violations stay conflicts.
REFUSING_SQLITE_CODES = frozenset({18, 20, 1811})


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


def refused(error: BaseException) -> StoreRefusedError | None:
    """The ledger's `StoreRefusedError` when the driver's error under the library's one
    refuses the data itself (never retried: the same rows would be refused again)."""
    cause = error.__cause__
    if isinstance(cause, psycopg.Error):
        refuses = (cause.sqlstate or "")[:2] in REFUSING_SQLSTATE_CLASSES
    else:
        code = getattr(cause, "sqlite_errorcode", None)
        refuses = isinstance(cause, sqlite3.Error) and code in REFUSING_SQLITE_CODES
    return StoreRefusedError(refusal(error)) if refuses else None


def refusal(error: BaseException) -> str:
    """The sentence of a refusal: the driver's first line and its error code."""
    cause = error.__cause__ or error
    text = (str(cause).strip() or type(cause).__name__).splitlines()[0]
    code = getattr(cause, "sqlstate", None) or getattr(cause, "sqlite_errorname", None)
    return f"{text} ({code})" if code else text
