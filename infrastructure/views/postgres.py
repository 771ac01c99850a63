"""The views on PostgreSQL: rows written by COPY, session advisory locks, LISTEN/NOTIFY.

A lock is a session advisory lock (key ``hashtext('partner-ledger:NAME')``) on a connection of
its own. It lasts as long as that session: a killed process releases it, but so does an outage
or ``pg_terminate_backend``, while the process goes on; so `HeldLock.check` asks the server
(one round trip, with a deadline).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypedDict

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor, pq
from psycopg.rows import DictRow, TupleRow, tuple_row

from domain.errors import LockLostError
from infrastructure.dbapi import Cursor as LedgerCursor
from infrastructure.ledger_queries import LedgerQueries
from infrastructure.storage_errors import TRANSIENT_ERRORS
from infrastructure.views.log import LogRecorder, RecorderLog
from infrastructure.views.rows import adding_clause
from infrastructure.views.store import SQLViewStore
from projections.locks import HeldLock, Patience
from projections.store import Generation, Row
from projections.views import View

STATEMENT_DEADLINE_MS = 5000  # a lock connection's every statement, the check included


class ConnectionParams(TypedDict):
    """Where and as whom the library's pool connects (``psycopg.connect`` keywords)."""

    dbname: str
    host: str
    port: str
    user: str
    password: str


def connection_params(datastore: PostgresDatastore) -> ConnectionParams:
    """Connection parameters of the library's pool, for the few connections that must live
    outside it: advisory locks and LISTEN."""
    kwargs = datastore.pool.kwargs
    assert isinstance(kwargs, dict)  # the library's pool always keeps them
    return ConnectionParams(
        dbname=kwargs["dbname"],
        host=kwargs["host"],
        port=kwargs["port"],
        user=kwargs["user"],
        password=kwargs["password"],
    )


class PostgresViewStore(SQLViewStore[Cursor[DictRow]]):
    def __init__(self, datastore: PostgresDatastore, *, schema_lock: int) -> None:
        self.datastore = datastore
        self.schema_lock = schema_lock
        super().__init__()

    @contextmanager
    def transaction(self) -> Iterator[Cursor[DictRow]]:
        with self.datastore.transaction(commit=True) as cursor:
            yield cursor

    @contextmanager
    def _reading(self) -> Iterator[Cursor[DictRow]]:
        # Autocommit, one statement: one round trip instead of BEGIN, SELECT, ROLLBACK.
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            yield cursor

    def _lock_schema(self, cursor: Cursor[DictRow]) -> None:
        # Serialize with other processes creating tables (see the ledger recorder).
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self.schema_lock,))

    def _analyze(self, generation: Generation) -> None:
        # A table filled by COPY has no planner statistics yet; give them to it before
        # readers and the follower's DELETEs start planning against it.
        with self.transaction() as cursor:
            cursor.execute(f"ANALYZE {generation.table}")

    def _insert(
        self, cursor: Cursor[DictRow], view: View, generation: Generation, rows: Sequence[Row]
    ) -> None:
        """Binary COPY; inside a pipeline (the ledger's write transaction, a small batch),
        where psycopg cannot COPY, one INSERT of a binary array per column."""
        if not rows:
            return
        names = ", ".join(view.column_names)
        if cursor.connection.pgconn.pipeline_status != pq.PipelineStatus.OFF:
            arrays = ", ".join(f"%b::{column.sql_type}[]" for column in view.columns)
            cursor.execute(
                f"INSERT INTO {generation.table} ({names}) SELECT * FROM unnest({arrays})",
                [list(column) for column in zip(*rows, strict=True)],
            )
            return
        with cursor.copy(f"COPY {generation.table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([column.sql_type.lower() for column in view.columns])
            for row in rows:
                copy.write_row(row)

    def _upsert(
        self, cursor: Cursor[DictRow], view: View, generation: Generation, rows: Sequence[Row]
    ) -> None:
        """One statement for all the rows (a binary array per column), not one per row."""
        arrays = ", ".join(f"%b::{column.sql_type}[]" for column in view.columns)
        cursor.execute(
            f"INSERT INTO {generation.table} ({', '.join(view.column_names)}) "
            f"SELECT * FROM unnest({arrays}) {adding_clause(view, generation)}",
            [list(column) for column in zip(*rows, strict=True)],
        )

    def move_or_fail(
        self,
        cursor: Cursor[DictRow],
        view: View,
        generation: Generation,
        *,
        expected: int,
        new: int,
        require_state: str | None = None,
    ) -> None:
        """One statement that fails (division by zero) when nothing moved: in a pipeline,
        nothing to wait for."""
        cursor.execute(
            "WITH moved AS (UPDATE projection_generations SET position = %s "
            "WHERE view = %s AND generation = %s AND position = %s "
            "AND state = COALESCE(%s, state) RETURNING 1) SELECT 1 / count(*) FROM moved",
            (new, view.name, generation.number, expected, require_state),
        )

    @contextmanager
    def savepoint(self, cursor: Cursor[DictRow], *, bulk: bool = False) -> Iterator[None]:
        """A small block: two round trips (SAVEPOINT goes with the block's statements in a
        pipeline, RELEASE after). A bulk block's statements go one by one, so that its rows
        can go by COPY (7x less client CPU per row than the arrays, measured on the
        memberships view's rows)."""
        connection = cursor.connection
        if bulk:
            with connection.transaction():
                yield
            return
        with connection.pipeline() as pipeline, connection.transaction():
            yield
            pipeline.sync()  # the block's errors are raised here, inside the savepoint

    def _columns(self, table: str) -> list[dict[str, Any]]:
        return self.query(
            "SELECT column_name AS name FROM information_schema.columns "
            "WHERE table_name = %s AND table_schema = current_schema()",
            (table,),
        )


class PostgresLog(RecorderLog):
    read_ahead = True

    def _tuples(self, cursor: LedgerCursor) -> None:
        if not isinstance(cursor, Cursor):
            raise TypeError("the PostgreSQL log reads through psycopg's cursors")
        cursor.row_factory = tuple_row


_HOLDS = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = pg_backend_pid() AND objsubid = 1 "
    "AND classid = ((hashtext(%(key)s)::bigint >> 32) & 4294967295)::oid "
    "AND objid = (hashtext(%(key)s)::bigint & 4294967295)::oid)"
)


class AdvisoryLock:
    def __init__(self, params: ConnectionParams, name: str, patience: Patience) -> None:
        self.name = name
        self.key = f"partner-ledger:{name}"
        self.connection = psycopg.connect(
            **params,
            autocommit=True,
            connect_timeout=5,
            application_name=f"partner-ledger lock {name} pid {os.getpid()}"[:63],
            options=f"-c statement_timeout={STATEMENT_DEADLINE_MS}",
            # A silent network: notice within seconds rather than the kernel's hours.
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=1,
            keepalives_count=3,
            tcp_user_timeout=STATEMENT_DEADLINE_MS,
        )
        try:
            while not self._try():
                patience.pause()
        except BaseException:
            self.connection.close()
            raise

    def _try(self) -> bool:
        row = self.connection.execute(
            "SELECT pg_try_advisory_lock(hashtext(%s))", (self.key,)
        ).fetchone()
        return bool(row and row[0])

    def check(self) -> None:
        try:
            row = self.connection.execute(_HOLDS, {"key": self.key}).fetchone()
        except psycopg.Error as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "closed"
            raise LockLostError(
                f"lost the lock {self.name!r}: its database session ended ({reason})"
            ) from None
        if not row or not row[0]:
            raise LockLostError(f"lost the lock {self.name!r}: its session no longer holds it")

    def release(self) -> None:
        with suppress(psycopg.Error):  # a broken session has released it already
            self.connection.close()


class AdvisoryLocks:
    def __init__(self, params: ConnectionParams) -> None:
        self.params = params

    def acquire(
        self, name: str, *, timeout: float = 0.0, cancel: threading.Event | None = None
    ) -> HeldLock:
        return AdvisoryLock(self.params, name, Patience(name, timeout, cancel))


class NotifyWaiter:
    """LISTEN/NOTIFY (reconnecting after an outage, polling meanwhile)."""

    def __init__(self, params: ConnectionParams, channel: str, timeout: float) -> None:
        self.params = params
        self.channel = channel
        self.timeout = timeout
        self.connection: psycopg.Connection[TupleRow] | None = None

    def __enter__(self) -> NotifyWaiter:
        return self

    def _listen(self) -> psycopg.Connection[TupleRow] | None:
        if self.connection is None:
            try:
                self.connection = psycopg.connect(**self.params, autocommit=True, connect_timeout=5)
                self.connection.execute(f"LISTEN {self.channel}")
            except psycopg.Error:
                self.connection = None
        return self.connection

    def wait(self, stop: threading.Event) -> None:
        connection = self._listen()
        if connection is None:
            stop.wait(self.timeout)
            return
        try:
            for _ in connection.notifies(timeout=self.timeout, stop_after=1):
                break
        except psycopg.Error:
            connection.close()
            self.connection = None
            stop.wait(self.timeout)

    def __exit__(self, *exc: object) -> None:
        if self.connection is not None:
            self.connection.close()


class PostgresViewStorage:
    """`projections.storage.ViewStorage` on PostgreSQL."""

    transient: tuple[type[Exception], ...] = (*TRANSIENT_ERRORS, OSError)

    def __init__(
        self,
        recorder: LedgerQueries[PostgresDatastore],
        notifications: LogRecorder,
        *,
        datastore: PostgresDatastore,
        channel: str,
        schema_lock: int,
    ) -> None:
        self.params = connection_params(datastore)
        self.channel = channel
        self.store = PostgresViewStore(datastore, schema_lock=schema_lock)
        self.log = PostgresLog(recorder, notifications)
        self.locks = AdvisoryLocks(self.params)

    def waiter(self, *, backstop_seconds: float, poll_seconds: float) -> NotifyWaiter:
        return NotifyWaiter(self.params, self.channel, backstop_seconds)
