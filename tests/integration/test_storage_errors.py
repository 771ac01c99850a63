"""The one place that turns the storage's errors into the ledger's
(`infrastructure.storage_errors`), against errors the real databases raise through the
library's own datastores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from eventsourcing.persistence import PersistenceError

from domain.errors import StorageUnavailableError
from domain.ledger import Ledger
from infrastructure.storage_errors import (
    STORAGE_ERRORS,
    TRANSIENT_ERRORS,
    refused,
    sqlite_refused_lock,
    storage_failures,
)

REFUSING_TRIGGER = {
    # SQLite refuses a value only through a trigger's RAISE(ABORT) (SQLITE_CONSTRAINT_TRIGGER).
    "sqlite": [
        "CREATE TRIGGER refuse BEFORE INSERT ON refusing "
        "BEGIN SELECT RAISE(ABORT, 'marked value refused'); END"
    ],
    "postgres": [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'marked value refused' USING ERRCODE = '22023'; END $$",
        "CREATE TRIGGER refuse BEFORE INSERT ON refusing FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
}


def backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite:") else "postgres"


def library_error(ledger: Ledger, *statements: str) -> PersistenceError:
    """The error the library's datastore raises for the last of ``statements``."""
    datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=True) as cursor:
        for statement in statements[:-1]:
            cursor.execute(statement)
    with pytest.raises(PersistenceError) as raised, datastore.transaction(commit=True) as cursor:
        cursor.execute(statements[-1])
    return raised.value


def test_a_refusal_of_the_data_becomes_store_refused_with_the_drivers_code(
    ledger: Ledger, db_url: str
) -> None:
    # Given a table whose trigger refuses every row
    error = library_error(
        ledger,
        "CREATE TABLE refusing (x INTEGER)",
        *REFUSING_TRIGGER[backend(db_url)],
        "INSERT INTO refusing VALUES (1)",
    )
    # Then it is the ledger's refusal, in one sentence naming the driver's code
    refusal = refused(error)
    assert refusal is not None
    code = "SQLITE_CONSTRAINT_TRIGGER" if backend(db_url) == "sqlite" else "22023"
    assert str(refusal) == f"marked value refused ({code})"


def test_a_conflict_is_not_a_refusal(ledger: Ledger) -> None:
    # Given a second row with the same primary key: a conflict, tried again, never split out
    error = library_error(
        ledger,
        "CREATE TABLE unique_rows (x INTEGER PRIMARY KEY)",
        "INSERT INTO unique_rows VALUES (1)",
        "INSERT INTO unique_rows VALUES (1)",
    )
    assert refused(error) is None


def test_a_storage_error_inside_storage_failures_is_one_sentence_of_unavailability(
    tmp_path: Path,
) -> None:
    connection = sqlite3.connect(tmp_path / "plain.db")
    failed = storage_failures("the ledger database plain.db failed")
    with pytest.raises(StorageUnavailableError) as raised, failed:
        connection.execute("SELECT * FROM missing")
    assert str(raised.value) == "the ledger database plain.db failed: no such table: missing"
    # Without the driver's traceback behind it: the door says the sentence only.
    assert raised.value.__suppress_context__
    connection.close()


def test_a_bug_inside_storage_failures_is_left_to_surface() -> None:
    with pytest.raises(KeyError), storage_failures("the ledger database failed"):
        raise KeyError("a bug")


def test_sqlite_refusing_its_lock_at_once_is_transient(tmp_path: Path) -> None:
    # Given one connection that holds SQLite's write lock
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    # When another asks for it without waiting
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as raised:
        other.execute("BEGIN IMMEDIATE")
    # Then the error is the storage's, transient, and the lock SQLite refused
    assert isinstance(raised.value, STORAGE_ERRORS)
    assert isinstance(raised.value, TRANSIENT_ERRORS)
    assert sqlite_refused_lock(raised.value)
    other.close()
    holder.close()
