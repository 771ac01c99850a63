"""The ledger's recorder on PostgreSQL: the library's recorder with the ledger's tables in
the same transaction (`infrastructure.recorders`), events and inbox rows sent by binary COPY
under the library's table lock (other rows as binary arrays), one writer at a time under an
advisory lock, and a refusal of the data raised at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor, pq
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Literal

from domain.errors import StoreRefusedError
from infrastructure.recorders.postgres_schema import create_schema, schema_names
from infrastructure.recorders.tables import (
    COLUMN_TYPES,
    MIGRATIONS,
    SCHEMA_LOCK,
    WRITER_LOCK,
    LedgerTables,
)
from infrastructure.storage_errors import LIBRARY_TRANSIENT_ERRORS, refused
from infrastructure.views.inline import LIVE, InlineViews, live_generations
from infrastructure.views.postgres import PostgresViewStorage

EVENT_COLUMNS = ("originator_id", "originator_version", "topic", "state", "notification_id")
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
        # The ids the library's column default would give, taken in one statement under its
        # table lock: the COPY then writes them, and the caller gets them without RETURNING.
        self.next_ids = SQL(
            "SELECT nextval(pg_get_serial_sequence({table}, 'notification_id')) AS id "
            "FROM generate_series(1, %s) ORDER BY id"
        ).format(table=Literal(f"{self.datastore.schema}.{events_table_name}"))
        # The log's last position before a batch: read under the table lock (so committed)
        # before the batch's rows are sent.
        self.previous_position = SQL(
            "SELECT COALESCE(MAX(notification_id), 0) AS previous FROM {table}"
        ).format(table=Identifier(events_table_name))
        self._inline_views: InlineViews[Cursor[DictRow]] | None = None

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The events and the ledger's rows in one transaction (`_write`), tried again on a
        transient failure as the library does, but not on a refusal of the data (see the
        module docstring): that is raised at once."""
        if kwargs.get("folded"):
            self.inline_views()  # made before the write: making its store takes a connection
        attempt = 1
        while True:
            try:
                return self._write(stored_events, **kwargs)
            except PersistenceError as error:
                if (refusal := refused(error)) is not None:
                    raise refusal from None
                transient = isinstance(error, LIBRARY_TRANSIENT_ERRORS)
                if not transient or attempt == INSERT_ATTEMPTS:
                    raise
            attempt += 1
            time.sleep(INSERT_RETRY_SECONDS)

    def _write(self, stored_events: Sequence[StoredEvent], **rows: Any) -> Sequence[int] | None:
        """What the library's insert does (its table lock and NOTIFY, ids from the table's
        own sequence, in order), with the events and the inbox sent by binary COPY. The
        statements before the COPY go in one pipeline: deadline, keys, quarantine and
        resolutions (before the lock, as every writer takes them), the lock, NOTIFY, for the
        inline views the log's last position and the live views, then the ids."""
        notification_ids: list[int] | None = None
        folded: Sequence[Any] = rows.get("folded") or ()
        inline = bool(folded and stored_events)
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
            conn.cursor() as before,  # for the inline views: the log's last position, views
            conn.cursor() as live,
        ):
            with conn.pipeline() as pipeline:
                try:
                    self._insert_events(curs, stored_events, **rows)
                    if stored_events:
                        self._lock_table(curs)
                        self._notify_channel(curs)
                        if inline:  # under the table lock and before our rows: committed
                            before.execute(self.previous_position)
                            live.execute(LIVE)
                        curs.execute(self.next_ids, (len(stored_events),))
                    pipeline.sync()
                    if stored_events:
                        notification_ids = [row["id"] for row in curs.fetchall()]
                except psycopg.Error as error:
                    with suppress(psycopg.Error):
                        pipeline.sync()  # the statements aborted after it
                    raise error from None
            if notification_ids is not None:
                self._append_rows(
                    curs,
                    self.events_table,
                    EVENT_COLUMNS,
                    [
                        (e.originator_id, e.originator_version, e.topic, e.state, position)
                        for e, position in zip(stored_events, notification_ids, strict=True)
                    ],
                    types=[self.datastore.originator_id_type, "bigint", "text", "bytea", "bigint"],
                )
            tips = self._write_inbox(curs, rows.get("inbox", ()), stored_events)
            self._write_snapshots(curs, rows.get("snapshots", ()), tips)
            if inline and notification_ids:
                row = before.fetchone()
                self.inline_views().write(
                    curs,
                    previous=row["previous"] if row else 0,
                    stored_events=stored_events,
                    notification_ids=notification_ids,
                    folded=folded,
                    live=live_generations(live.fetchall()),
                )
            if conn.pgconn.status != pq.ConnStatus.OK:
                # A view's failure was the connection's, and psycopg leaves a transaction on a
                # lost connection without committing and without a word.
                raise psycopg.OperationalError("the connection was lost before the commit")
        return notification_ids

    @contextmanager
    def writing(self) -> Iterator[None]:
        """One batch recorded at a time across processes. The library's table lock already
        serializes the inserts, but each writer reads (duplicates, snapshots) before it; two
        service workers recording deliveries for the same memberships would keep losing
        that race to each other and retrying. Session-level: released if the process dies.
        Waited for at most the lock timeout (`LockNotAvailable` then), not forever. Two
        round trips: `take_writer_lock`, and the unlock (a broken connection has released
        it already)."""
        with self.datastore.get_connection() as conn:
            conn.execute(take_writer_lock(self.datastore.lock_timeout))
            try:
                yield
            finally:
                with suppress(psycopg.Error):
                    conn.execute(SQL("SELECT pg_advisory_unlock({0})").format(WRITER_LOCK))

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
        """The library's table and the ledger's, created or migrated when missing
        (`infrastructure.recorders.postgres_schema`), on one pooled connection."""
        create_schema(
            self.datastore,
            types=[s for s in self.sql_create_statements if "CREATE TYPE" in s.as_string()],
            tables={self.events_table, *schema_names(self.ledger_ddl())},
            create_tables=self._create_table,
        )
        self.datastore.register_type_adapters()

    def _append_rows(
        self,
        curs: Cursor[DictRow],
        table: str,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        *,
        types: Sequence[str] | None = None,
    ) -> None:
        """Rows appended by binary COPY: no statement text to parse, no arrays to build and
        unpack, one pass through the table's indexes. A number too large for its column is
        refused here (psycopg raises OverflowError before it sends that row)."""
        statement = SQL("COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)").format(
            table=Identifier(table), columns=SQL(", ").join(map(Identifier, columns))
        )
        try:
            with curs.copy(statement) as copy:
                copy.set_types(types or [COLUMN_TYPES[column] for column in columns])
                for row in rows:
                    copy.write_row(row)
        except OverflowError as error:
            raise StoreRefusedError(f"a number is out of the database's range: {error}") from None

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
        curs.execute(sql, [list(column) for column in zip(*rows, strict=True)])

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

    def inline_views(self) -> InlineViews[Cursor[DictRow]]:
        """The views this recorder updates in its write transaction (made once)."""
        if self._inline_views is None:
            self._inline_views = InlineViews(self.view_storage().store)
        return self._inline_views

    # --- how PostgreSQL spells the shared SQL ----------------------------------------------

    def one_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(%b)", [list(values)]

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


def take_writer_lock(lock_timeout: float) -> Composed:
    """The writers' lock in one simple-query message, one implicit transaction. PostgreSQL
    reads ``lock_timeout`` when a wait begins, so the SET bounds the lock's wait (a refusal
    rolls the SET back); taken, the RESET gives the pooled connection its default back."""
    wait = f"{max(int(lock_timeout), 1)}s"
    return SQL("SET lock_timeout = {0}; SELECT pg_advisory_lock({1}); RESET lock_timeout").format(
        Literal(wait), WRITER_LOCK
    )
