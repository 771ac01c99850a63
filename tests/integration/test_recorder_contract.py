"""The library's own recorder contract, run against both of our recorders.

Our recorders replace parts of the library's (on PostgreSQL events and inbox rows by binary COPY
with ids taken from the sequence, on SQLite one executemany; inbox and snapshots in the same
transaction) under a ``9.5.*`` pin, so the library's test cases are the contract they must keep:
`ApplicationRecorderTestCase` (insert and select, notification ids, concurrent writers with
concurrent readers) and `NonInterleavingNotificationIDsBaseCase` (two racing inserts never
interleave their notification ids). The cases that only print timings are left out.

Each case gets a fresh SQLite file or a fresh PostgreSQL database (made and dropped here, named
after the test session as in ``conftest.py``), and a connection pool of ONE connection: the
smallest pool a deployment may configure, which ``create_table`` once could not start on.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
)

from domain.integrity import GENESIS
from domain.rows import InboxRow, SnapshotRow
from infrastructure.recorders import PostgresLedgerRecorder, SQLiteLedgerRecorder
from tests.conftest import ADMIN_URL, PostgresServer

_server = PostgresServer(ADMIN_URL)


def _join_threads_started_since(before: set[threading.Thread]) -> None:
    """Wait for the threads a case started and left running: the library's concurrent case
    tells its reader threads to stop but does not join them, and closing the datastore under
    a reader that is still in SQLite's C code crashed the interpreter (seen once, exit 139).
    Daemon threads (the connection pool's workers) end with the pool instead."""
    for thread in threading.enumerate():
        if thread not in before and not thread.daemon and thread is not threading.current_thread():
            thread.join(timeout=30)


def _datastore(dbname: str, *, pool_size: int) -> PostgresDatastore:
    """The library's datastore on the test server's database ``dbname``: at most
    ``pool_size`` connections."""
    return PostgresDatastore(
        dbname=dbname,
        host="127.0.0.1",
        port="5432",
        user="postgres",
        password="",
        pool_size=pool_size,
        max_overflow=0,
        get_password_func=None,
    )


class _OnPostgres:
    """A fresh database per case and a pool of one connection."""

    url: str
    datastore: PostgresDatastore
    threads: set[threading.Thread]

    def setUp(self) -> None:
        self.threads = set(threading.enumerate())
        self.url = _server.create()
        name = self.url.rsplit("/", 1)[1]
        self.datastore = _datastore(name, pool_size=1)
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        super().tearDown()  # type: ignore[misc]
        _join_threads_started_since(self.threads)
        self.datastore.close()
        _server.drop(self.url)

    def create_recorder(self) -> PostgresLedgerRecorder:
        recorder = PostgresLedgerRecorder(self.datastore)
        recorder.create_table()
        return recorder


class _OnSQLite:
    """A fresh file per case (WAL, as the ledger uses it)."""

    directory: tempfile.TemporaryDirectory[str]
    datastore: SQLiteDatastore
    threads: set[threading.Thread]

    def setUp(self) -> None:
        self.threads = set(threading.enumerate())
        self.directory = tempfile.TemporaryDirectory()
        self.datastore = SQLiteDatastore(str(Path(self.directory.name) / "ledger.db"))
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        super().tearDown()  # type: ignore[misc]
        _join_threads_started_since(self.threads)
        self.datastore.close()
        self.directory.cleanup()

    def create_recorder(self) -> SQLiteLedgerRecorder:
        recorder = SQLiteLedgerRecorder(self.datastore)
        recorder.create_table()
        return recorder


class TestPostgresApplicationRecorderContract(_OnPostgres, ApplicationRecorderTestCase[Any]):
    test_performance = None  # type: ignore[assignment]  # prints timings, asserts nothing
    test_concurrent_throughput = None  # type: ignore[assignment]


class TestSQLiteApplicationRecorderContract(_OnSQLite, ApplicationRecorderTestCase[Any]):
    test_performance = None  # type: ignore[assignment]
    test_concurrent_throughput = None  # type: ignore[assignment]


class TestPostgresNonInterleavingNotificationIds(
    _OnPostgres, NonInterleavingNotificationIDsBaseCase
):
    pass


class TestSQLiteNonInterleavingNotificationIds(_OnSQLite, NonInterleavingNotificationIDsBaseCase):
    pass


def test_postgres_recorder_starts_on_a_pool_of_one_connection(
    postgres: PostgresServer,
) -> None:
    # Given a new database and a pool that can hand out one connection only
    url = postgres.create()
    datastore = _datastore(url.rsplit("/", 1)[1], pool_size=1)
    try:
        # When the recorder creates its tables (the first start) and starts again
        PostgresLedgerRecorder(datastore).create_table()
        PostgresLedgerRecorder(datastore).create_table()
        # Then every table exists
        with psycopg.connect(url, autocommit=True) as conn:
            tables = {
                row[0]
                for row in conn.execute(
                    "SELECT relname FROM pg_class WHERE relkind = 'r' "
                    "AND relnamespace = current_schema()::regnamespace"
                )
            }
        assert {
            "stored_events",
            "ledger_inbox",
            "ledger_heads",
            "ledger_quarantine",
            "ledger_customer_keys",
            "ledger_digests",
        } <= tables
    finally:
        datastore.close()
        postgres.drop(url)


def _write_with_ledger_rows(
    recorder: PostgresLedgerRecorder | SQLiteLedgerRecorder, count: int
) -> list[StoredEvent]:
    """``count`` first events of new memberships, written with their inbox and snapshot rows
    (the ledger's write: events and inbox by COPY on PostgreSQL, executemany on SQLite)."""
    events = [
        StoredEvent(originator_id=uuid4(), originator_version=1, topic="tests:Linked", state=b"{}")
        for _ in range(count)
    ]
    inbox = [
        InboxRow(
            membership_id=event.originator_id,
            version=1,
            org_id=7,
            customer_id=n,
            partner_program_id=70,
            previous_hash=GENESIS,
            fingerprint=f"fingerprint-{event.originator_id}",
            event_id=f"event-{event.originator_id}",
            occurred_at_ms=1_700_000_000_000,
            recorded_at_us=1_700_000_000_000_000,
        )
        for n, event in enumerate(events)
    ]
    snapshots = [SnapshotRow(event.originator_id, 1, "{}") for event in events]
    before = recorder.max_notification_id() or 0
    notification_ids = recorder.insert_events(events, inbox=inbox, snapshots=snapshots)
    # The ids the write returns are the ones the library's readers see, in the same order.
    notifications = recorder.select_notifications(start=before + 1, limit=count + 1)
    assert notification_ids == [n.id for n in notifications]
    assert [n.originator_id for n in notifications] == [e.originator_id for e in events]
    assert recorder.max_notification_id() == notifications[-1].id
    return events


def test_a_write_with_the_ledger_rows_gives_the_ids_the_sqlite_readers_see(
    tmp_path: Path,
) -> None:
    datastore = SQLiteDatastore(str(tmp_path / "ledger.db"))
    try:
        recorder = SQLiteLedgerRecorder(datastore)
        recorder.create_table()
        _write_with_ledger_rows(recorder, 3)
        # A second write continues the sequence where the first ended.
        _write_with_ledger_rows(recorder, 2)
        assert recorder.max_notification_id() == 5
    finally:
        datastore.close()


def test_a_write_with_the_ledger_rows_notifies_and_reaches_a_subscription(
    postgres: PostgresServer,
) -> None:
    # Given a recorder on a new database, a LISTEN on its channel and a subscription
    url = postgres.create()
    datastore = _datastore(url.rsplit("/", 1)[1], pool_size=3)
    try:
        recorder = PostgresLedgerRecorder(datastore)
        recorder.create_table()
        with (
            psycopg.connect(url, autocommit=True) as listener,
            recorder.subscribe(gt=None) as subscription,
        ):
            listener.execute(f"LISTEN {recorder.channel_name}")
            # When events are written with their inbox and snapshot rows
            events = _write_with_ledger_rows(recorder, 3)
            # Then the library's NOTIFY was sent, and the subscription yields the events
            assert len(list(listener.notifies(timeout=10, stop_after=1))) == 1
            received = [next(subscription) for _ in events]
            assert [n.originator_id for n in received] == [e.originator_id for e in events]
            assert [n.id for n in received] == [1, 2, 3]
    finally:
        datastore.close()
        postgres.drop(url)
