"""The views updated inline, in the write transaction, on real SQLite files and a real
PostgreSQL: the rows a batch writes inline are the rows catch-up and a rebuild write, a view
that is behind is left to catch-up, and a view whose update fails costs the batch nothing."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import DataError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.decode import parse_all
from domain.errors import PositionConflictError
from domain.ledger import Ledger
from domain.notifications import Notification
from domain.services import Recording
from infrastructure.http.writer import TRANSIENT_ERRORS
from infrastructure.settings import Settings
from infrastructure.views.inline import BULK_MEMBERSHIPS
from infrastructure.wiring import open_ledger
from projections.runner import Projector
from projections.store import reader_name
from projections.views import EXPIRY, VIEWS, View
from tests.conftest import BACKENDS, PostgresServer, generated
from tests.integration.test_pipeline_equivalence import deliveries

RECEIVED = itertools.count(1_900_000_000_000_000, 1_000)


@pytest.fixture(params=BACKENDS)
def two_ledgers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Ledger, Ledger]]:
    """Two fresh ledgers of one store: one records with its views updated inline, the other
    leaves them to catch-up."""
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / 'inline.db'}", f"sqlite:///{tmp_path / 'caught_up.db'}"]
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        urls = [server.create(), server.create()]
    with open_ledger(Settings(db=urls[0])) as inline, open_ledger(Settings(db=urls[1])) as other:
        # Both build their (empty) views first: from here on, inline writes keep them current.
        Projector(inline).catch_up()
        Projector(other).catch_up()
        yield inline, other


def rows(projector: Projector, view: View) -> list[dict[str, Any]]:
    """Every row of a view's live generation, in its order."""
    return projector.store.query(
        f"SELECT * FROM {reader_name(view)} ORDER BY {', '.join(view.order_by)}"
    )


def positions(projector: Projector) -> dict[str, int]:
    return {row["view"]: row["position"] for row in projector.status()}


def assert_no_rebuild_changes(projector: Projector) -> None:
    for view in VIEWS.values():
        report = projector.rebuild(view, diff_only=True)
        assert (report["changed"], report["added"], report["removed"]) == (0, 0, 0), report


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=deliveries(), batch_size=st.integers(3, 60))
def test_inline_rows_equal_caught_up_rows_and_rebuilt_rows(
    two_ledgers: tuple[Ledger, Ledger], batches: list[list[bytes]], batch_size: int
) -> None:
    inline, other = two_ledgers
    recording = Recording(inline)
    inline_projector, other_projector = Projector(inline), Projector(other, batch_size=batch_size)
    for batch in batches:
        # The same batch into both ledgers: one through the doors' use case (views inline)...
        received = next(RECEIVED)
        outcomes = recording.record(batch)
        assert [o.status for o in other.receive(batch, received_at_us=received)] == [
            o.status for o in outcomes
        ]
        # ...which moved every view to the head in the batch's own transaction.
        head = inline_projector.last_position()
        assert positions(inline_projector) == dict.fromkeys(VIEWS, head)
    # The other catches up from the log, in small batches: the same rows, row for row.
    other_projector.catch_up()
    for view in VIEWS.values():
        assert rows(inline_projector, view) == rows(other_projector, view), view.name
    # A follower of the inline ledger finds nothing to do, and a rebuild changes nothing.
    assert inline_projector.catch_up() == dict.fromkeys(VIEWS, 0)
    assert_no_rebuild_changes(inline_projector)


def test_a_large_batch_writes_its_rows_in_bulk_and_they_equal_caught_up_rows(
    two_ledgers: tuple[Ledger, Ledger],
) -> None:
    inline, other = two_ledgers
    stream = generated(3000, seed=74)
    batches = [stream[:1500], stream[1500:]]  # each with far more memberships than the bulk mark
    for batch in batches:
        received = next(RECEIVED)
        keys = {n.key for n in parse_all(batch) if isinstance(n, Notification)}
        assert len(keys) >= BULK_MEMBERSHIPS * 2
        Recording(inline).record(batch)
        other.receive(batch, received_at_us=received)
    inline_projector, other_projector = Projector(inline), Projector(other)
    head = inline_projector.last_position()
    assert positions(inline_projector) == dict.fromkeys(VIEWS, head)
    other_projector.catch_up()
    for view in VIEWS.values():
        assert rows(inline_projector, view) == rows(other_projector, view), view.name
    assert_no_rebuild_changes(inline_projector)


def test_a_view_behind_the_log_is_left_to_catch_up(ledger: Ledger) -> None:
    stream = generated(600, seed=71)
    projector = Projector(ledger)
    projector.catch_up()
    # Recorded without the views: they stay where they were...
    ledger.receive(stream[:300])
    assert set(positions(projector).values()) == {0}
    # ...and a batch recorded with them leaves them there, behind the log, for catch-up.
    Recording(ledger).record(stream[300:])
    assert set(positions(projector).values()) == {0}
    projector.catch_up()
    assert set(positions(projector).values()) == {projector.last_position()}
    Recording(ledger).record(generated(200, seed=72))
    assert set(positions(projector).values()) == {projector.last_position()}
    assert_no_rebuild_changes(projector)


def refusing_inserts(db_url: str, table: str) -> list[str]:
    """Statements that make ``table`` refuse every insert (a trigger), then the one that
    drops it again."""
    if db_url.startswith("sqlite"):
        return [
            f"CREATE TRIGGER refuse BEFORE INSERT ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'refused by a test'); END",
            "DROP TRIGGER refuse",
        ]
    return [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'refused by a test'; END $$",
        f"CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse()",
        f"DROP TRIGGER refuse ON {table}",
    ]


def execute(projector: Projector, statements: list[str]) -> None:
    with projector.store.transaction() as cursor:  # type: ignore[attr-defined]
        for statement in statements:
            cursor.execute(statement)


def test_a_view_whose_update_fails_leaves_the_events_committed_and_is_caught_up_later(
    ledger: Ledger, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    stream = generated(900, seed=73)
    projector = Projector(ledger)
    projector.catch_up()
    table = projector.store.live(EXPIRY).table  # type: ignore[union-attr]
    *refuse, allow = refusing_inserts(db_url, table)
    execute(projector, refuse)
    # The expiry view refuses its rows: the batch commits, and the other views move with it.
    outcomes = Recording(ledger).record(stream[:450])
    assert {o.status for o in outcomes} >= {"recorded"}
    head = projector.last_position()
    assert head > 0
    assert positions(projector) == {"memberships": head, "expiry": 0, "activity": head}
    # ... and says so, once, naming the view.
    warned = [r.getMessage() for r in caplog.records if r.name == "partner_ledger.views"]
    assert len(warned) == 1 and warned[0].startswith("the expiry view was not updated")
    # The next batch leaves the expiry view behind too: it no longer stands at the log's head.
    Recording(ledger).record(stream[450:])
    head = projector.last_position()
    assert positions(projector) == {"memberships": head, "expiry": 0, "activity": head}
    # Once the table takes rows again, a follower catches the expiry view up.
    execute(projector, [allow])
    stop = threading.Event()
    follower = threading.Thread(target=Projector(ledger).follow, args=(stop,))
    follower.start()
    try:
        deadline = time.monotonic() + 60
        while positions(projector)["expiry"] != head and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        follower.join(timeout=30)
    assert positions(projector) == dict.fromkeys(VIEWS, head)
    assert {row["dead_letters"] for row in projector.status()} == {0}
    assert_no_rebuild_changes(projector)


@pytest.mark.parametrize(
    ("added", "expected"),
    [
        ([1], [1]),
        ([2, 3], [5]),  # two rows of one key in one call: written once, summed
        ([1, 1, 1], [3]),
    ],
)
def test_a_tallys_rows_of_one_key_add_up_to_one_row(
    two_ledgers: tuple[Ledger, Ledger], added: list[int], expected: list[int]
) -> None:
    inline, _ = two_ledgers
    projector = Projector(inline)
    view = VIEWS["activity"]
    generation = projector.store.live(view)
    assert generation is not None
    key = (7, 70, 700, "2026-11", "link")
    store = projector.store
    with store.transaction() as cursor:  # type: ignore[attr-defined]
        store.add(cursor, view, generation, [(*key, count, "m-7") for count in added])  # type: ignore[attr-defined]
    with store.transaction() as cursor:  # type: ignore[attr-defined]
        store.add(cursor, view, generation, [(*key, 10, "m-7")])  # type: ignore[attr-defined]
    assert [row["events"] for row in rows(projector, view)] == [e + 10 for e in expected]


def test_a_view_moved_since_it_was_read_fails_the_strict_move_and_keeps_its_position(
    ledger: Ledger,
) -> None:
    # Given the views built on an empty log (position 0)
    projector = Projector(ledger)
    projector.catch_up()
    store = ledger.recorder.inline_views().store  # type: ignore[attr-defined]
    generation = store.live(EXPIRY)
    assert generation is not None and generation.position == 0
    # When the inline writer expects it elsewhere (another writer moved it), the strict move
    # fails its transaction instead of moving it
    refusals = (PositionConflictError, DataError)  # SQLite's check, PostgreSQL's statement
    with pytest.raises(refusals), store.transaction() as cursor:
        store.move_or_fail(cursor, EXPIRY, generation, expected=5, new=9, require_state="live")
    assert positions(projector)[EXPIRY.name] == 0
    # And where it does stand, the strict move moves it
    with store.transaction() as cursor:
        store.move_or_fail(cursor, EXPIRY, generation, expected=0, new=9, require_state="live")
    assert positions(projector)[EXPIRY.name] == 9


def test_a_view_that_loses_the_connection_fails_the_batch_instead_of_answering_uncommitted(
    postgres_url: str,
) -> None:
    # Given a ledger whose expiry view ends its own session when a row is written to it (an
    # outage in the middle of the inline views)
    with open_ledger(Settings(db=postgres_url)) as ledger:
        projector = Projector(ledger)
        projector.catch_up()
        table = projector.store.live(EXPIRY).table  # type: ignore[union-attr]
        execute(
            projector,
            [
                "CREATE FUNCTION end_session() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$",
                f"CREATE TRIGGER end_session BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION end_session()",
            ],
        )
        # When a batch is recorded, it fails as the webhook's transient errors do (a 429, sent
        # again later), instead of being answered as recorded: nothing was committed
        with pytest.raises(TRANSIENT_ERRORS, match="connection"):
            Recording(ledger).record(generated(5, seed=3))
        assert projector.last_position() == 0
