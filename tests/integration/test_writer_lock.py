"""The writers' advisory lock on PostgreSQL (`PostgresLedgerRecorder.writing`): one batch
recorded at a time, a wait bounded by the lock timeout, and a pooled connection handed back
with the server's default timeouts whatever happened.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from eventsourcing.persistence import OperationalError

from domain.ledger import Ledger
from infrastructure.recorders import WRITER_LOCK, PostgresLedgerRecorder
from infrastructure.recorders.postgres import take_writer_lock
from infrastructure.settings import Settings
from infrastructure.wiring import open_ledger

TIMEOUTS = "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"


@pytest.fixture
def recorder(postgres_url: str) -> Iterator[PostgresLedgerRecorder]:
    with open_ledger(Settings(db=postgres_url, lock_timeout_seconds=1)) as ledger:
        assert isinstance(ledger, Ledger)
        assert isinstance(ledger.recorder, PostgresLedgerRecorder)
        yield ledger.recorder


def defaults(recorder: PostgresLedgerRecorder) -> tuple[object, ...]:
    """The timeouts a connection of the recorder's pool has now."""
    with recorder.datastore.get_connection() as conn:
        row = conn.execute(TIMEOUTS).fetchone()
    assert row is not None
    return tuple(row.values())


def holders(postgres_url: str) -> int:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE d.datname = current_database() AND locktype = 'advisory' AND granted "
            "AND (classid::bigint << 32) + objid::bigint = %s",
            (WRITER_LOCK,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_writer_holds_the_lock_while_it_writes_and_gives_it_back(
    recorder: PostgresLedgerRecorder, postgres_url: str
) -> None:
    # Given a recorder whose pooled connections have the server's defaults
    before = defaults(recorder)
    # When it writes, it holds the lock; after, nobody does
    with recorder.writing():
        assert holders(postgres_url) == 1
    assert holders(postgres_url) == 0
    # And its connections have their defaults back
    assert defaults(recorder) == before


def test_a_writer_waits_for_the_lock_at_most_the_lock_timeout(
    recorder: PostgresLedgerRecorder, postgres_url: str
) -> None:
    before = defaults(recorder)
    # Given another process holding the writers' lock
    with psycopg.connect(postgres_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (WRITER_LOCK,))
        # When this recorder wants to write, it is refused after the lock timeout (1 s)
        started = time.monotonic()
        with pytest.raises(OperationalError, match="lock timeout"), recorder.writing():
            pytest.fail("the writer took a lock another process holds")
        waited = time.monotonic() - started
        assert 0.9 < waited < 3
    # Then its connections have their defaults back, and the lock is free for it
    assert defaults(recorder) == before
    with recorder.writing():
        assert holders(postgres_url) == 1


def test_the_one_statement_lock_is_bounded_by_its_timeout_and_leaves_the_defaults(
    postgres_url: str,
) -> None:
    with (
        psycopg.connect(postgres_url, autocommit=True) as other,
        psycopg.connect(postgres_url, autocommit=True) as conn,
    ):
        before = conn.execute(TIMEOUTS).fetchone()
        # Given another session holding the lock, the statement gives up after its 1 s
        other.execute("SELECT pg_advisory_lock(%s)", (WRITER_LOCK,))
        started = time.monotonic()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            conn.execute(take_writer_lock(1))
        assert 0.9 < time.monotonic() - started < 3
        # and the session keeps its defaults (the refused SET was rolled back)
        assert conn.execute(TIMEOUTS).fetchone() == before
        # Given the lock free, the statement takes it and resets what it set
        other.execute("SELECT pg_advisory_unlock(%s)", (WRITER_LOCK,))
        conn.execute(take_writer_lock(1))
        assert conn.execute(TIMEOUTS).fetchone() == before
        assert other.execute("SELECT pg_try_advisory_lock(%s)", (WRITER_LOCK,)).fetchone() == (
            False,
        )


def test_a_writer_whose_connection_broke_while_it_wrote_goes_on(
    recorder: PostgresLedgerRecorder, postgres_url: str
) -> None:
    # Given a writer holding the lock whose session is ended under it (an outage)
    with recorder.writing(), psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks l JOIN pg_database d "
            "ON d.oid = l.database WHERE d.datname = current_database() "
            "AND locktype = 'advisory' AND (classid::bigint << 32) + objid::bigint = %s",
            (WRITER_LOCK,),
        )
    # Then leaving it raised nothing; the lock went with the session, and the next writer
    # takes it
    assert holders(postgres_url) == 0
    with recorder.writing():
        assert holders(postgres_url) == 1
