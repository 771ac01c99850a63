"""The ledger's recorder on SQLite: the library's recorder with the ledger's tables in its one
transaction (`infrastructure.recorders`); SQLite has one writer at a time anyway.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any
from uuid import UUID

from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore

from infrastructure.ledger_queries import chunks, marks
from infrastructure.recorders.tables import ADDED_COLUMNS, LedgerTables
from infrastructure.storage_errors import refused
from infrastructure.views.inline import InlineViews
from infrastructure.views.sqlite import SQLiteViewStorage, write_transaction


class SQLiteLedgerRecorder(LedgerTables[SQLiteDatastore, SQLiteCursor], SQLiteApplicationRecorder):
    """SQLite: one writer at a time, so everything goes in the library's one transaction."""

    placeholder = "?"
    uuid_type = "TEXT"
    bytes_type = "BLOB"
    position_column = "rowid"

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)
        self.events_table = events_table_name
        self._inline_views: InlineViews[SQLiteCursor] | None = None

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *self.ledger_ddl()]

    def create_table(self) -> None:
        super().create_table()
        table, column = ADDED_COLUMNS[0]
        if column in self._columns(table):
            return  # every start but the first after an upgrade: nothing to write
        # Read and write under the write lock: processes starting together on an old file
        # would otherwise fail at once ("database is locked") instead of waiting their turn.
        with write_transaction(self.datastore) as curs:
            curs.execute(f"PRAGMA table_info({table})")
            if column not in {row["name"] for row in curs.fetchall()}:
                curs.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")

    def _columns(self, table: str) -> set[str]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(f"PRAGMA table_info({table})")
            return {row["name"] for row in curs.fetchall()}

    def originator(self, value: UUID) -> str:
        return value.hex

    @contextmanager
    def reading(self) -> Iterator[SQLiteCursor]:
        with self.datastore.transaction(commit=False) as curs:
            yield curs

    def view_storage(self) -> SQLiteViewStorage:
        """The projections' storage in this database (`projections.storage`)."""
        return SQLiteViewStorage(self, self, datastore=self.datastore)

    def writing(self) -> AbstractContextManager[None]:
        return nullcontext()  # SQLite has one writer at a time anyway

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if kwargs.get("folded"):
            self.inline_views()  # made before the write: making its store takes the write lock
        try:
            return super().insert_events(stored_events, **kwargs)
        except PersistenceError as error:
            if (refusal := refused(error)) is not None:
                raise refusal from None
            raise

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._write_keys(c, kwargs.get("keys", ()))
        self._write_quarantine(c, kwargs.get("quarantine", ()))
        self._write_resolutions(c, kwargs.get("resolutions", ()))
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        tips = self._write_inbox(c, kwargs.get("inbox", ()), stored_events)
        self._write_snapshots(c, kwargs.get("snapshots", ()), tips)
        folded = kwargs.get("folded")
        if folded and notification_ids:
            # The log's last position before the batch: this transaction holds the write lock.
            c.execute(
                f"SELECT COALESCE(MAX(rowid), 0) AS previous FROM {self.events_table} "
                "WHERE rowid < ?",
                (notification_ids[0],),
            )
            self.inline_views().write(
                c,
                previous=c.fetchone()["previous"],
                stored_events=stored_events,
                notification_ids=notification_ids,
                folded=folded,
            )
        return notification_ids

    def inline_views(self) -> InlineViews[SQLiteCursor]:
        """The views this recorder updates in its write transaction (made once)."""
        if self._inline_views is None:
            self._inline_views = InlineViews(self.view_storage().store)
        return self._inline_views

    # --- how SQLite spells the shared SQL --------------------------------------------------

    def sql(self, text: str) -> str:
        return text.replace("%s", self.placeholder)

    def member_of(self, column: str, values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        """Chunks of placeholders (SQLite has no arrays)."""
        for chunk in chunks(list(values)):
            yield f"{column} IN ({marks(chunk)})", chunk

    def pairs_in(
        self, columns: tuple[str, str], pairs: Sequence[tuple[Any, Any]], types: tuple[str, str]
    ) -> Iterator[tuple[str, list[Any]]]:
        first, second = columns
        for chunk in chunks(list(pairs), 250):
            condition = " OR ".join([f"({first} = %s AND {second} = %s)"] * len(chunk))
            yield f"({condition})", [value for pair in chunk for value in pair]
