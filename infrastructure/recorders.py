"""Application recorders that keep the inbox and the quarantine beside the events.

The library's recorders store events; ours also write, in the **same transaction**:

- ``ledger_inbox``: one row per recorded notification (membership id, version, fingerprint,
  eventId, occurrence and recording time). Its unique indexes make duplicate detection
  permanent and atomic with the write: two concurrent deliveries of one notification cannot
  both commit; the loser gets an ``IntegrityError`` and the ledger retries, finding a duplicate.
- ``ledger_quarantine``: raw bytes of every payload that could not be recorded, keyed by the
  SHA-256 of those bytes, with a reason code, a sentence, receipt times, and where it came from
  (``source``, nullable: a column added after the first release, migrated on start-up).

The rows travel as keyword arguments of ``Application.save()``, which the library passes down
to ``insert_events()``.

A store error that says the *data* is refused (PostgreSQL SQLSTATE class 22, data exception,
or 54, program limit exceeded, e.g. an index row too large; SQLite's "string or blob too big",
"datatype mismatch", or a trigger's ``RAISE(ABORT)``) is raised at once as `StoreRefusedError`,
never retried: the same rows would be refused again. The ledger splits the batch to find the
payload the store refuses. Connection, rollback, resource and operator errors (classes 08, 40,
53, 57) stay transient and are retried as the library does.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from psycopg.sql import SQL, Composed, Identifier

from domain.errors import StoreRefusedError
from domain.integrity import chain_hash
from domain.rows import CustomerKeyRow, HeadRow, InboxRow, QuarantineRow, Resolution, Sealed
from infrastructure.ledger_queries import LedgerQueries
from infrastructure.vault import IdentifierVault

# PostgreSQL SQLSTATE classes that refuse the data itself: retrying cannot help.
REFUSING_SQLSTATE_CLASSES = frozenset({"22", "54"})
# SQLite's equivalents: SQLITE_TOOBIG, SQLITE_MISMATCH, and SQLITE_CONSTRAINT_TRIGGER (the only
# way an SQLite trigger can refuse a value). Unique and primary-key violations stay conflicts.
REFUSING_SQLITE_CODES = frozenset({18, 20, 1811})
# As the library retries a transient failure of insert_events: 10 attempts, 0.2 s apart.
INSERT_ATTEMPTS = 10
INSERT_RETRY_SECONDS = 0.2

SCHEMA_LOCK = 7_261_129_001  # advisory lock key: creating or migrating the ledger's tables
WRITER_LOCK = 7_261_129_002  # advisory lock key: one batch being recorded at a time

INBOX_COLUMNS = (
    "originator_id",
    "originator_version",
    "org_id",
    "customer_id",
    "partner_program_id",
    "fingerprint",
    "event_id",
    "occurred_at_ms",
    "recorded_at_us",
    "previous_hash",
    "hash",
)
# Columns added to tables after their first release: (table, column), nullable TEXT.
ADDED_COLUMNS = (("ledger_quarantine", "source"),)
MIGRATIONS = tuple(
    f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} TEXT" for table, column in ADDED_COLUMNS
)
HEAD_COLUMNS = ("originator_id", "originator_version", "head", "hash")
KEY_COLUMNS = ("org_id", "customer_id", "key", "created_at_us")
# A head only ever moves forward (a writer that lost a race does not commit anyway).
HEAD_UPSERT = (
    " ON CONFLICT (originator_id) DO UPDATE SET originator_version = "
    "excluded.originator_version, head = excluded.head, hash = excluded.hash "
    "WHERE excluded.originator_version > ledger_heads.originator_version"
)
COLUMN_TYPES = {
    "head": "text",
    "originator_id": "uuid",
    "originator_version": "bigint",
    "org_id": "bigint",
    "customer_id": "bigint",
    "partner_program_id": "bigint",
    "fingerprint": "text",
    "event_id": "text",
    "occurred_at_ms": "bigint",
    "recorded_at_us": "bigint",
    "previous_hash": "text",
    "hash": "text",
    "key": "bytea",
    "created_at_us": "bigint",
}


class LedgerTables(LedgerQueries):
    """SQL shared by both databases: written with ``%s`` placeholders; SQLite swaps in ``?``."""

    bytes_type = "bytea"

    def ledger_ddl(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS ledger_inbox ("
            f"originator_id {self.uuid_type} NOT NULL, originator_version BIGINT NOT NULL, "
            "org_id BIGINT NOT NULL, customer_id BIGINT NOT NULL, "
            "partner_program_id BIGINT NOT NULL, "
            "fingerprint TEXT NOT NULL, event_id TEXT, occurred_at_ms BIGINT NOT NULL, "
            "recorded_at_us BIGINT NOT NULL, previous_hash TEXT NOT NULL, hash TEXT NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version))",
            "CREATE INDEX IF NOT EXISTS ledger_inbox_recorded "
            "ON ledger_inbox (org_id, recorded_at_us)",
            "CREATE INDEX IF NOT EXISTS ledger_inbox_key "
            "ON ledger_inbox (org_id, customer_id, partner_program_id)",
            "CREATE TABLE IF NOT EXISTS ledger_customer_keys (org_id BIGINT NOT NULL, "
            f"customer_id BIGINT NOT NULL, key {self.bytes_type}, created_at_us BIGINT NOT NULL, "
            "forgotten_at_us BIGINT, PRIMARY KEY (org_id, customer_id))",
            "CREATE TABLE IF NOT EXISTS ledger_digests (position BIGINT PRIMARY KEY, "
            "events BIGINT NOT NULL, digest TEXT NOT NULL, created_at_us BIGINT NOT NULL)",
            "CREATE UNIQUE INDEX IF NOT EXISTS ledger_inbox_fingerprint "
            "ON ledger_inbox (fingerprint)",
            "CREATE UNIQUE INDEX IF NOT EXISTS ledger_inbox_event_id ON ledger_inbox (event_id)",
            "CREATE TABLE IF NOT EXISTS ledger_quarantine ("
            f"id TEXT PRIMARY KEY, raw {self.bytes_type} NOT NULL, reason TEXT NOT NULL, "
            "detail TEXT NOT NULL, received_at_us BIGINT NOT NULL, "
            "last_received_at_us BIGINT NOT NULL, times_received BIGINT NOT NULL, "
            "resolved_at_us BIGINT, resolution TEXT, source TEXT)",
            "CREATE INDEX IF NOT EXISTS ledger_quarantine_open "
            "ON ledger_quarantine (resolved_at_us, received_at_us)",
            "CREATE TABLE IF NOT EXISTS ledger_heads ("
            f"originator_id {self.uuid_type} PRIMARY KEY, originator_version BIGINT NOT NULL, "
            "head TEXT NOT NULL, hash TEXT NOT NULL)",
        ]

    # --- statements ----------------------------------------------------------------------

    def _write_quarantine(self, curs: Any, rows: Sequence[QuarantineRow]) -> None:
        for row in rows:
            curs.execute(
                self.sql(
                    "INSERT INTO ledger_quarantine (id, raw, reason, detail, received_at_us, "
                    "last_received_at_us, times_received) VALUES (%s, %s, %s, %s, %s, %s, 1) "
                    "ON CONFLICT (id) DO UPDATE SET reason = excluded.reason, "
                    "detail = excluded.detail, resolved_at_us = NULL, resolution = NULL, "
                    # A replay is not a receipt: only a new delivery moves these two.
                    "last_received_at_us = CASE WHEN %s = 1 THEN excluded.last_received_at_us "
                    "ELSE ledger_quarantine.last_received_at_us END, "
                    "times_received = ledger_quarantine.times_received + %s"
                ),
                (
                    row.id,
                    row.raw,
                    row.reason,
                    row.detail,
                    row.received_at_us,
                    row.received_at_us,
                    1 if row.is_receipt else 0,
                    1 if row.is_receipt else 0,
                ),
            )

    def _write_keys(self, curs: Any, rows: Sequence[CustomerKeyRow]) -> None:
        """New customer keys, in the events' transaction. No ``ON CONFLICT``: a key another
        writer (or ``forget``) made meanwhile is a conflict, and the batch is tried again."""
        if rows:
            values = [(r.org_id, r.customer_id, r.key, r.created_at_us) for r in rows]
            self._insert_rows(curs, "ledger_customer_keys", KEY_COLUMNS, values)

    def _write_resolutions(self, curs: Any, rows: Sequence[Resolution]) -> None:
        for row in rows:
            curs.execute(
                self.sql(
                    "UPDATE ledger_quarantine SET resolved_at_us = %s, resolution = %s "
                    "WHERE id = %s"
                ),
                (row.resolved_at_us, row.resolution, row.id),
            )

    def _write_inbox(
        self, curs: Any, rows: Sequence[InboxRow], stored_events: Sequence[StoredEvent]
    ) -> dict[UUID, str]:
        """Inbox rows, each with its event's chain hash (computed over the stored bytes);
        returns each membership's new chain head."""
        if not rows:
            return {}
        stored = {(e.originator_id, e.originator_version): e for e in stored_events}
        heads: dict[UUID, str] = {}
        values = []
        for row in rows:
            event = stored[(row.membership_id, row.version)]
            previous = heads.get(row.membership_id, row.previous_hash)
            digest = chain_hash(
                previous,
                membership_id=row.membership_id,
                version=row.version,
                topic=event.topic,
                state=event.state,
            )
            heads[row.membership_id] = digest
            values.append(
                (
                    self.originator(row.membership_id),
                    row.version,
                    row.org_id,
                    row.customer_id,
                    row.partner_program_id,
                    row.fingerprint,
                    row.event_id,
                    row.occurred_at_ms,
                    row.recorded_at_us,
                    previous,
                    digest,
                )
            )
        self._insert_rows(curs, "ledger_inbox", INBOX_COLUMNS, values)
        return heads

    def _insert_rows(
        self,
        curs: Any,
        table: str,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        suffix: str = "",
    ) -> None:
        marks = ", ".join(["%s"] * len(columns))
        curs.executemany(
            self.sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){suffix}"),
            rows,
        )

    def _write_heads(self, curs: Any, rows: Sequence[HeadRow], hashes: dict[UUID, str]) -> None:
        """Each membership's head, with the chain hash of its latest event."""
        if rows:
            values = [
                (
                    self.originator(row.membership_id),
                    row.version,
                    row.head,
                    hashes[row.membership_id],
                )
                for row in rows
            ]
            self._insert_rows(curs, "ledger_heads", HEAD_COLUMNS, values, HEAD_UPSERT)

    # --- personal data -------------------------------------------------------------------

    @property
    def vault(self) -> IdentifierVault:
        return IdentifierVault(self)

    def seal(self, items: Sequence[tuple[int, int, dict[str, str]]]) -> Sealed:
        return self.vault.seal(items)

    def unseal(self, org: int, customer: int, sealed: str | None) -> dict[str, str] | None:
        return self.vault.unseal(org, customer, sealed)

    def forget(self, org: int, customer: int) -> bool:
        return self.vault.forget(org, customer)


class PostgresLedgerRecorder(LedgerTables, PostgresApplicationRecorder):
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

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's insert with its retries of transient failures, but not of a refusal
        of the data (see the module docstring): that is raised at once."""
        insert = PostgresApplicationRecorder.insert_events.__wrapped__  # without its @retry
        attempt = 1
        while True:
            try:
                result: Sequence[int] | None = insert(self, stored_events, **kwargs)
                return result
            except PersistenceError as error:
                if _refused(error):
                    raise StoreRefusedError(_refusal(error)) from None
                transient = isinstance(error, InterfaceError | OperationalError)
                if not transient or attempt == INSERT_ATTEMPTS:
                    raise
            attempt += 1
            time.sleep(INSERT_RETRY_SECONDS)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """One batch recorded at a time across processes. The library's table lock already
        serializes the inserts, but each writer reads (duplicates, heads) before it; two
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
    def reading(self) -> Iterator[Any]:
        # Autocommit, one statement: one round trip instead of BEGIN, SELECT, ROLLBACK.
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            yield curs

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

    def _create_types(self, conn: Any) -> None:
        """The library's composite types, each in a savepoint: PostgreSQL has no ``CREATE
        TYPE IF NOT EXISTS``, and an existing type must not abort the whole transaction."""
        for statement in self.sql_create_statements:
            if "CREATE TYPE" in statement.as_string():
                with suppress(psycopg.errors.DuplicateObject), conn.transaction():
                    conn.execute(statement, prepare=False)

    def _schema_exists(self, conn: Any) -> bool:
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
        curs: Any,
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
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
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
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
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
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # The library has synced the pipeline by now, so a conflicting insert of events has
        # already raised its IntegrityError; the inbox rows go in after, on a second cursor
        # (the first one still holds the RETURNING rows read here).
        notification_ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        connection = curs.connection
        # Synced here, so that a refused inbox row raises its own error: otherwise the heads
        # statement queued after it fails too ("pipeline aborted", no SQLSTATE), and the
        # library's pipeline exit raises that one instead.
        with connection.pipeline() as pipeline:
            try:
                with connection.cursor() as inbox_cursor:
                    hashes = self._write_inbox(inbox_cursor, kwargs.get("inbox", ()), stored_events)
                    self._write_heads(inbox_cursor, kwargs.get("heads", ()), hashes)
                pipeline.sync()
            except psycopg.Error as error:
                with suppress(psycopg.Error):
                    pipeline.sync()  # the statements aborted after it
                raise error from None
        return notification_ids


class SQLiteLedgerRecorder(LedgerTables, SQLiteApplicationRecorder):
    """SQLite: one writer at a time, so everything goes in the library's one transaction."""

    placeholder = "?"
    uuid_type = "TEXT"
    bytes_type = "BLOB"
    position_column = "rowid"

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)
        self.events_table = events_table_name

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *self.ledger_ddl()]

    def create_table(self) -> None:
        super().create_table()
        table, column = ADDED_COLUMNS[0]
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(f"PRAGMA table_info({table})")
            if column not in {row["name"] for row in curs.fetchall()}:
                with suppress(sqlite3.OperationalError):  # another process added it first
                    curs.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")

    def originator(self, value: UUID) -> Any:
        return value.hex

    @contextmanager
    def reading(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as curs:
            yield curs

    def writing(self) -> AbstractContextManager[None]:
        return nullcontext()  # SQLite has one writer at a time anyway

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        try:
            return super().insert_events(stored_events, **kwargs)
        except PersistenceError as error:
            if _refused(error):
                raise StoreRefusedError(_refusal(error)) from None
            raise

    def _insert_events(
        self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._write_keys(c, kwargs.get("keys", ()))
        self._write_quarantine(c, kwargs.get("quarantine", ()))
        self._write_resolutions(c, kwargs.get("resolutions", ()))
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        hashes = self._write_inbox(c, kwargs.get("inbox", ()), stored_events)
        self._write_heads(c, kwargs.get("heads", ()), hashes)
        return notification_ids


def _refused(error: BaseException) -> bool:
    """True when the driver's error under the library's one refuses the data itself."""
    cause = error.__cause__
    if isinstance(cause, psycopg.Error):
        return (cause.sqlstate or "")[:2] in REFUSING_SQLSTATE_CLASSES
    if isinstance(cause, sqlite3.Error):
        return getattr(cause, "sqlite_errorcode", None) in REFUSING_SQLITE_CODES
    return False


def _refusal(error: BaseException) -> str:
    cause = error.__cause__ or error
    text = (str(cause).strip() or type(cause).__name__).splitlines()[0]
    code = getattr(cause, "sqlstate", None) or getattr(cause, "sqlite_errorname", None)
    return f"{text} ({code})" if code else text
