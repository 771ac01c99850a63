"""The views on PostgreSQL: their rows (COPY, or binary arrays inside a pipeline), the log
they are caught up from, and the storage that wires them with the locks and the LISTEN of
`infrastructure.views.postgres_sessions`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor, pq
from psycopg.rows import DictRow, tuple_row

from infrastructure.dbapi import Cursor as LedgerCursor
from infrastructure.ledger_queries import LedgerQueries
from infrastructure.storage_errors import TRANSIENT_ERRORS
from infrastructure.views.log import LogRecorder, RecorderLog
from infrastructure.views.postgres_sessions import AdvisoryLocks, NotifyWaiter, connection_params
from infrastructure.views.rows import adding_clause
from infrastructure.views.store import SQLViewStore
from projections.store import Generation, Row
from projections.views import View


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
            arrays, columns = _as_arrays(view, rows)
            cursor.execute(
                f"INSERT INTO {generation.table} ({names}) SELECT * FROM unnest({arrays})", columns
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
        arrays, columns = _as_arrays(view, rows)
        cursor.execute(
            f"INSERT INTO {generation.table} ({', '.join(view.column_names)}) "
            f"SELECT * FROM unnest({arrays}) {adding_clause(view, generation)}",
            columns,
        )

    def _delete_memberships(
        self, cursor: Cursor[DictRow], generation: Generation, ids: Sequence[str]
    ) -> None:
        """One statement with one array parameter, planned for each batch (never prepared: a
        generic plan made while the table was small scans it whole once it has grown, which
        took PostgreSQL's CPU per webhook delivery from 0.25 to 0.45 ms over 50,000)."""
        cursor.execute(
            f"DELETE FROM {generation.table} WHERE membership_id = ANY(%s)",
            (list(ids),),
            prepare=False,
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


def _as_arrays(view: View, rows: Sequence[Row]) -> tuple[str, list[list[Any]]]:
    """The rows as one binary array per column: the ``unnest`` arguments and their values."""
    arrays = ", ".join(f"%b::{column.sql_type}[]" for column in view.columns)
    return arrays, [list(column) for column in zip(*rows, strict=True)]


class PostgresLog(RecorderLog):
    read_ahead = True

    def _tuples(self, cursor: LedgerCursor) -> None:
        if not isinstance(cursor, Cursor):
            raise TypeError("the PostgreSQL log reads through psycopg's cursors")
        cursor.row_factory = tuple_row


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
