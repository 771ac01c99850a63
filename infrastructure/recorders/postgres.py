"""The ledger's recorder on PostgreSQL: the library's recorder with the ledger's tables in
the same transaction (`infrastructure.recorders`), events and rows sent as binary arrays, one
writer at a time under an advisory lock, and a refusal of the data raised at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Connection, Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from infrastructure.recorders.tables import (
    ADDED_COLUMNS,
    COLUMN_TYPES,
    MIGRATIONS,
    SCHEMA_LOCK,
    WRITER_LOCK,
    LedgerTables,
)
from infrastructure.storage_errors import LIBRARY_TRANSIENT_ERRORS, refused
from infrastructure.views.inline import InlineViews
from infrastructure.views.postgres import PostgresViewStorage

# As the library retries a transient failure of insert_events: 10 attempts, 0.2 s apart.
INSERT_ATTEMPTS = 10
INSERT_RETRY_SECONDS = 0.2


class PostgresLedgerRecorder(
    LedgerTables[PostgresDatastore, Cursor[DictRow]], PostgresApplicationRecorder
):
    """PostgreSQL: quarantine rows are written before the library's table lock, inbox rows
    after it, so every writer takes locks in the same order and none can deadlock."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.events_table = events_table_name
        self.sql_create_statements.extend(Composed([SQL(s)]) for s in self.ledger_ddl())
        self.sql_create_statements.extend(Composed([SQL(s)]) for s in MIGRATIONS)
        self.insert_events_arrays = SQL(
            "INSERT INTO {table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(table=Identifier(events_table_name))
        # The log's last position before a batch: read under the table lock, so committed.
        self.previous_position = SQL(
            "SELECT COALESCE(MAX(notification_id), 0) AS previous FROM {table} "
            "WHERE notification_id < %s"
        ).format(table=Identifier(events_table_name))
        self._inline_views: InlineViews[Cursor[DictRow]] | None = None

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's insert with its retries of transient failures, but not of a refusal
        of the data (see the module docstring): that is raised at once."""
        if kwargs.get("folded"):
            self.inline_views()  # made before the write: making its store takes a connection
        insert = PostgresApplicationRecorder.insert_events.__wrapped__  # without its @retry
        attempt = 1
        while True:
            try:
                result: Sequence[int] | None = insert(self, stored_events, **kwargs)
                return result
            except PersistenceError as error:
                if (refusal := refused(error)) is not None:
                    raise refusal from None
                transient = isinstance(error, LIBRARY_TRANSIENT_ERRORS)
                if not transient or attempt == INSERT_ATTEMPTS:
                    raise
            attempt += 1
            time.sleep(INSERT_RETRY_SECONDS)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """One batch recorded at a time across processes. The library's table lock already
        serializes the inserts, but each writer reads (duplicates, snapshots) before it; two
        service workers recording deliveries for the same memberships would keep losing
        that race to each other and retrying. Session-level: released if the process dies.
        Waited for at most the lock timeout (`LockNotAvailable` then), not forever."""
        wait = f"{max(int(self.datastore.lock_timeout), 1)}s"
        with self.datastore.get_connection() as conn:
            conn.execute(
                "SELECT set_config('lock_timeout', %s, false), "
                "set_config('statement_timeout', %s, false)",
                (wait, wait),
            )
            try:
                conn.execute("SELECT pg_advisory_lock(%s)", (WRITER_LOCK,))
            finally:
                with suppress(psycopg.Error):  # pooled: the next user gets the defaults back
                    conn.execute("RESET lock_timeout")
                    conn.execute("RESET statement_timeout")
            try:
                yield
            finally:
                with suppress(psycopg.Error):  # a broken connection has released it already
                    conn.execute("SELECT pg_advisory_unlock(%s)", (WRITER_LOCK,))

    @contextmanager
    def reading(self) -> Iterator[Cursor[DictRow]]:
        # Autocommit, one statement: one round trip instead of BEGIN, SELECT, ROLLBACK.
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            yield curs

    def view_storage(self) -> PostgresViewStorage:
        """The projections' storage in this database (`projections.storage`)."""
        return PostgresViewStorage(
            self,
            self,
            datastore=self.datastore,
            channel=self.channel_name,
            schema_lock=SCHEMA_LOCK,
        )

    def create_table(self) -> None:
        """Create types and tables under an advisory lock: processes starting together on a
        new database would otherwise race on PostgreSQL's catalog and fail. When every table
        and index exists already (any start but the first), run no DDL at all: ``CREATE INDEX
        IF NOT EXISTS`` locks its table before it finds the index, and the whole DDL is one
        transaction that locks the events table first and the quarantine later, the opposite
        order of a writer (deadlock, seen with processes starting while others ingest).

        Everything runs on one pooled connection (the library's own ``create_table`` takes a
        connection per statement group), so a pool of one connection can start."""
        with self.datastore.get_connection() as conn:
            if not self._schema_exists(conn):
                with conn.transaction(), conn.cursor() as curs:
                    curs.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                    if not self._schema_exists(conn):  # else made by whoever held the lock
                        self._create_types(conn)
                        self._create_table(curs)
        self.datastore.register_type_adapters()

    def _create_types(self, conn: Connection[DictRow]) -> None:
        """The library's composite types, each in a savepoint: PostgreSQL has no ``CREATE
        TYPE IF NOT EXISTS``, and an existing type must not abort the whole transaction."""
        for statement in self.sql_create_statements:
            if "CREATE TYPE" in statement.as_string():
                with suppress(psycopg.errors.DuplicateObject), conn.transaction():
                    conn.execute(statement, prepare=False)

    def _schema_exists(self, conn: Connection[DictRow]) -> bool:
        names = {self.events_table}
        for statement in self.ledger_ddl():
            names.update(re.findall(r"(?:TABLE|INDEX) IF NOT EXISTS (\w+)", statement))
        row = conn.execute(
            "SELECT count(*) AS found FROM pg_class WHERE relname = ANY(%s) "
            "AND relnamespace = current_schema()::regnamespace",
            (sorted(names),),
        ).fetchone()
        if row is None or row["found"] != len(names):
            return False
        columns = conn.execute(
            "SELECT count(*) AS found FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s AND column_name = %s",
            ADDED_COLUMNS[0],
        ).fetchone()
        return columns is not None and columns["found"] == 1

    def _insert_rows(
        self,
        curs: Cursor[DictRow],
        table: str,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        suffix: str = "",
    ) -> None:
        """One statement whatever the number of rows: a column of values per array
        parameter, sent in binary (no text escaping of the event bytes)."""
        types = [COLUMN_TYPES[column] for column in columns]
        sql = SQL("INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}){suffix}").format(
            table=Identifier(table),
            columns=SQL(", ").join(map(Identifier, columns)),
            arrays=SQL(", ").join(SQL("%b::{}[]").format(SQL(kind)) for kind in types),
            suffix=SQL(suffix),
        )
        # Never prepared: a statement prepared in a pipeline that a refused row aborts is
        # taken for prepared by psycopg, and its next use fails ("does not exist").
        curs.execute(sql, [list(column) for column in zip(*rows, strict=True)], prepare=False)

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        """As the library does (table lock, NOTIFY, one INSERT ... RETURNING), with the
        events as four binary arrays instead of an array of composites in text, which
        psycopg escapes byte by byte in Python."""
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self.insert_events_arrays,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
            prepare=True,
        )

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # Every statement of the write has a deadline, not only its locks (the library sets
        # the lock timeout): three lock timeouts, so a lock wait fails first and says so.
        curs.execute(
            SQL("SET LOCAL statement_timeout = '{0}s'").format(
                max(3 * int(self.datastore.lock_timeout), 1)
            )
        )
        self._write_keys(curs, kwargs.get("keys", ()))
        self._write_quarantine(curs, kwargs.get("quarantine", ()))
        self._write_resolutions(curs, kwargs.get("resolutions", ()))

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # The library has synced the pipeline by now, so a conflicting insert of events has
        # already raised its IntegrityError; the inbox rows go in after, on a second cursor
        # (the first one still holds the RETURNING rows read here).
        notification_ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        connection = curs.connection
        # Synced here, so that a refused inbox row raises its own error: otherwise the snapshots
        # statement queued after it fails too ("pipeline aborted", no SQLSTATE), and the
        # library's pipeline exit raises that one instead.
        with connection.pipeline() as pipeline:
            try:
                with connection.cursor() as inbox_cursor:
                    tips = self._write_inbox(inbox_cursor, kwargs.get("inbox", ()), stored_events)
                    self._write_snapshots(inbox_cursor, kwargs.get("snapshots", ()), tips)
                pipeline.sync()
            except psycopg.Error as error:
                with suppress(psycopg.Error):
                    pipeline.sync()  # the statements aborted after it
                raise error from None
        folded = kwargs.get("folded")
        if folded and notification_ids:
            with connection.cursor() as views_cursor:
                views_cursor.execute(self.previous_position, (notification_ids[0],))
                row = views_cursor.fetchone()
                self.inline_views().write(
                    views_cursor,
                    previous=row["previous"] if row else 0,
                    stored_events=stored_events,
                    notification_ids=notification_ids,
                    folded=folded,
                )
        return notification_ids

    def inline_views(self) -> InlineViews[Cursor[DictRow]]:
        """The views this recorder updates in its write transaction (made once)."""
        if self._inline_views is None:
            self._inline_views = InlineViews(self.view_storage().store)
        return self._inline_views

    # --- how PostgreSQL spells the shared SQL ----------------------------------------------

    def member_of(self, column: str, values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        """One array parameter, sent in binary (psycopg quotes a text array element by
        element in Python)."""
        if values:
            yield f"{column} = ANY(%b)", [list(values)]

    def pairs_in(
        self, columns: tuple[str, str], pairs: Sequence[tuple[Any, Any]], types: tuple[str, str]
    ) -> Iterator[tuple[str, list[Any]]]:
        if pairs:
            first, second = columns
            yield (
                f"({first}, {second}) IN (SELECT * FROM unnest(%b::{types[0]}[], "
                f"%b::{types[1]}[]))",
                [[a for a, _ in pairs], [b for _, b in pairs]],
            )
