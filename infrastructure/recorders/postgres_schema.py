"""Creating and migrating the ledger's tables on PostgreSQL, safely while other processes
start or write.

Types and tables are created under an advisory lock: processes starting together on a new
database would otherwise race on PostgreSQL's catalog and fail. When every table and index
exists already and no retired index is left (any start but the first after a release), no DDL
runs at all: ``CREATE INDEX IF NOT EXISTS`` locks its table before it finds the index, and the
whole DDL is one transaction that locks the events table first and the quarantine later, the
opposite order of a writer (deadlock, seen with processes starting while others ingest).

Everything runs on one pooled connection (the library's own ``create_table`` takes a
connection per statement group), so a pool of one connection can start.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg import Connection, Cursor
from psycopg.rows import DictRow
from psycopg.sql import Composed

from infrastructure.recorders.tables import ADDED_COLUMNS, RETIRED_INDEXES, SCHEMA_LOCK


def schema_names(ddl: Iterable[str]) -> set[str]:
    """The tables and indexes that a list of ``... IF NOT EXISTS`` statements creates."""
    return {
        name
        for statement in ddl
        for name in re.findall(r"(?:TABLE|INDEX) IF NOT EXISTS (\w+)", statement)
    }


def create_schema(
    datastore: PostgresDatastore,
    *,
    types: Sequence[Composed],
    tables: set[str],
    create_tables: Callable[[Cursor[DictRow]], None],
) -> None:
    """Create ``types`` and run ``create_tables`` unless every one of ``tables`` (tables and
    indexes) exists and the schema needs no migration (see the module docstring)."""
    with datastore.get_connection() as conn:
        if not _schema_exists(conn, tables):
            with conn.transaction(), conn.cursor() as curs:
                curs.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                if not _schema_exists(conn, tables):  # else made by whoever held the lock
                    _create_types(conn, types)
                    create_tables(curs)


def _create_types(conn: Connection[DictRow], types: Sequence[Composed]) -> None:
    """The library's composite types, each in a savepoint: PostgreSQL has no ``CREATE
    TYPE IF NOT EXISTS``, and an existing type must not abort the whole transaction."""
    for statement in types:
        with suppress(psycopg.errors.DuplicateObject), conn.transaction():
            conn.execute(statement, prepare=False)


def _schema_exists(conn: Connection[DictRow], names: set[str]) -> bool:
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE relname = ANY(%s)) AS found, "
        "count(*) FILTER (WHERE relname = ANY(%s)) AS retired FROM pg_class "
        "WHERE relnamespace = current_schema()::regnamespace",
        (sorted(names), list(RETIRED_INDEXES)),
    ).fetchone()
    if row is None or row["found"] != len(names) or row["retired"]:
        return False
    columns = conn.execute(
        "SELECT count(*) AS found FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s AND column_name = %s",
        ADDED_COLUMNS[0],
    ).fetchone()
    return columns is not None and columns["found"] == 1
