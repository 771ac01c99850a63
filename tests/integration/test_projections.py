"""The views on real SQLite files and a real PostgreSQL: current, exact, rebuildable."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from datetime import date
from typing import Any
from uuid import uuid4

import pytest

from domain.errors import LockHeldError, RebuildError
from domain.ledger import Ledger, membership_record
from infrastructure.settings import Settings
from infrastructure.views.queries import Queries
from infrastructure.wiring import open_ledger
from projections import runner
from projections.log import touched_streams
from projections.runner import Projector
from projections.views import EXPIRY, MEMBERSHIPS, VIEWS
from tests.conftest import generated
from tests.oracle import membership_states, streams_up_to

STREAM = generated(3_000, seed=31)


def receive_in_batches(ledger: Ledger, lines: list[bytes], size: int = 250) -> None:
    for start in range(0, len(lines), size):
        ledger.receive(lines[start : start + size])


def counted_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count the calls the runner makes to one of its module-level functions."""
    calls: list[int] = []
    real = getattr(runner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, name, counted)
    return calls


def folded(ledger: Ledger) -> list[dict[str, Any]]:
    """What the views must say: every membership folded straight from its events."""
    return [membership_record(state) for state in membership_states(ledger)]


def test_views_built_incrementally_with_crashes_equal_a_fresh_rebuild(ledger: Ledger) -> None:
    rng = random.Random(5)
    for start in range(0, len(STREAM), 600):
        ledger.receive(STREAM[start : start + 600])
        # A projector that "crashes" after a few small batches: it simply stops, and a new
        # one (as after a restart) carries on from the stored positions.
        crashing = Projector(ledger, batch_size=rng.randint(7, 97))
        for view in VIEWS.values():
            live = crashing.store.live(view)
            if live is None:
                crashing.rebuild(view)
                continue
            for _ in range(rng.randint(0, 3)):
                crashing._advance(view, crashing.store.live(view) or live, strict=False)
    projector = Projector(ledger)
    projector.catch_up()
    queries = Queries(projector.store)
    incremental = (list(queries.memberships()), list(queries.expiry()))

    for view in VIEWS.values():
        report = projector.rebuild(view)
        assert (report["changed"], report["added"], report["removed"]) == (0, 0, 0)
    assert (list(queries.memberships()), list(queries.expiry())) == incremental
    assert incremental[0] == folded(ledger)


def test_expiry_view_agrees_with_the_memberships_view(ledger: Ledger) -> None:
    receive_in_batches(ledger, STREAM)
    projector = Projector(ledger)
    projector.catch_up()
    queries = Queries(projector.store)
    expected = set()
    for row in queries.memberships():
        if row["status"] != "LINKED":
            continue
        key = (row["org_id"], row["customer_id"], row["partner_program_id"])
        for kind, field in (
            ("membership", "membership_expiry_date"),
            ("tier", "tier_expiry_date"),
            ("scheduled", "scheduled_expiry_date"),
        ):
            if row[field] is not None:
                expected.add((*key, kind, row[field]))
    actual = {tuple(row.values()) for row in queries.expiry()}
    assert actual == expected
    assert len(actual) > 100


def test_a_first_catch_up_builds_every_view_in_one_pass_over_the_log(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    receive_in_batches(ledger, STREAM)
    passes = counted_calls(monkeypatch, "pages")
    projector = Projector(ledger)
    processed = projector.catch_up()
    # No generation yet: both views were built, from one read of the log.
    assert len(passes) == 1
    assert set(processed) == set(VIEWS)
    queries = Queries(projector.store)
    together = (list(queries.memberships()), list(queries.expiry()))
    # Each view rebuilt on its own says the same.
    for view in VIEWS.values():
        report = projector.rebuild(view)
        assert (report["changed"], report["added"], report["removed"]) == (0, 0, 0)
    assert together[0] == folded(ledger)
    assert (list(queries.memberships()), list(queries.expiry())) == together


def test_live_views_at_one_position_share_each_batchs_read_and_fold(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    receive_in_batches(ledger, STREAM[:1500])
    projector = Projector(ledger, batch_size=200)
    projector.catch_up()
    receive_in_batches(ledger, STREAM[1500:])
    reads = counted_calls(monkeypatch, "touched_streams")
    processed = projector.catch_up()
    assert processed["memberships"] == processed["expiry"] > 200
    assert len(reads) == -(-processed["memberships"] // 200)  # one read per batch, not per view
    assert list(Queries(projector.store).memberships()) == folded(ledger)
    for view in VIEWS.values():  # the expiry view too: what a rebuild from scratch says
        report = projector.rebuild(view)
        assert (report["changed"], report["added"], report["removed"]) == (0, 0, 0)


def test_a_batch_reads_the_touched_streams_up_to_its_end_only(ledger: Ledger) -> None:
    receive_in_batches(ledger, STREAM[:1500])
    recorder: Any = ledger.recorder
    middle = recorder.select_notifications(start=0, limit=600)[-1].id
    touched = list({n.originator_id for n in recorder.select_notifications(start=0, limit=900)})
    streams = touched_streams(Projector(ledger).log, touched, up_to=middle)
    assert streams == streams_up_to(ledger.store, touched, middle)
    assert max(p for stream in streams.values() for p, _ in stream) == middle


def test_concurrent_catch_ups_apply_each_batch_once(db_url: str) -> None:
    with open_ledger(Settings(db=db_url)) as ledger:
        receive_in_batches(ledger, STREAM)
        Projector(ledger).catch_up()  # the first build, then only incremental work
        receive_in_batches(ledger, generated(800, seed=32))
        expected = folded(ledger)
    errors: list[BaseException] = []

    def catch_up() -> None:
        try:
            with open_ledger(Settings(db=db_url)) as own:
                Projector(own, batch_size=40).catch_up()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=catch_up) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with open_ledger(Settings(db=db_url)) as ledger:
        projector = Projector(ledger)
        assert list(Queries(projector.store).memberships()) == expected
        assert {v["lag_events"] for v in projector.status()} == {0}


def test_a_schema_change_rebuilds_while_readers_keep_getting_complete_answers(
    ledger: Ledger,
) -> None:
    receive_in_batches(ledger, STREAM)
    projector = Projector(ledger)
    projector.catch_up()
    queries = Queries(projector.store)
    expected_count = len(list(queries.memberships()))
    expected_tiers = queries.tiers()
    answers: list[int] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                answers.append(len(list(queries.memberships())))
                assert queries.tiers() == expected_tiers
            except BaseException as error:
                failures.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        # The next version of the memberships view: the next catch-up sees the bump and rebuilds.
        bumped = dataclasses.replace(MEMBERSHIPS, schema_version=MEMBERSHIPS.schema_version + 1)
        before = projector.store.live(MEMBERSHIPS)
        for _ in range(3):
            projector.catch_up([bumped])
            bumped = dataclasses.replace(bumped, schema_version=bumped.schema_version + 1)
    finally:
        done.set()
        reader.join()
    assert failures == []
    assert answers and set(answers) == {expected_count}
    after = projector.store.live(MEMBERSHIPS)
    assert before is not None and after is not None
    assert (after.number, after.schema_version) == (
        before.number + 3,
        MEMBERSHIPS.schema_version + 3,
    )
    # Old generations were dropped after each switch.
    assert [g.number for g in projector.store.generations(MEMBERSHIPS)] == [after.number]


def test_a_poison_event_is_dead_lettered_and_the_view_moves_on(ledger: Ledger) -> None:
    ledger.receive(STREAM[:500])
    projector = Projector(ledger)
    projector.catch_up()
    poison_id = insert_poison_event(ledger)
    ledger.receive(STREAM[500:1000])
    projector.catch_up()

    status = {row["view"]: row for row in projector.status()}
    assert {row["lag_events"] for row in status.values()} == {0}
    assert {row["dead_letters"] for row in status.values()} == {1}
    letters = projector.store.dead_letters()  # one per view
    assert len(letters) == len(VIEWS)
    letter = letters[0]
    assert letter["membership_id"] == str(poison_id)
    assert "Topic" in letter["error"] or "Error" in letter["error"]
    # Everything else is there.
    # Everything else is there (the poison event never passed the inbox, so the direct fold
    # leaves it out too).
    assert list(Queries(projector.store).memberships()) == folded(ledger)


def test_a_poison_event_stops_a_rebuild_and_the_live_view_keeps_answering(ledger: Ledger) -> None:
    ledger.receive(STREAM[:500])
    projector = Projector(ledger)
    projector.catch_up()
    queries = Queries(projector.store)
    before = list(queries.memberships())
    insert_poison_event(ledger)
    with pytest.raises(RebuildError, match="cannot project membership"):
        projector.rebuild(MEMBERSHIPS)
    assert list(queries.memberships()) == before
    assert [g.state for g in projector.store.generations(MEMBERSHIPS)] == ["live"]


def test_expiring_pages_with_a_cursor_in_date_then_key_order(ledger: Ledger) -> None:
    receive_in_batches(ledger, STREAM)
    projector = Projector(ledger)
    projector.catch_up()
    queries = Queries(projector.store)
    everything = queries.expiring(limit=100_000)
    assert everything == list(queries.expiry())
    pages: list[dict[str, Any]] = []
    after = None
    while True:
        page = queries.expiring(limit=37, after=after)
        pages.extend(page)
        if len(page) < 37:
            break
        after = tuple(page[-1][name] for name in EXPIRY.order_by)
    assert pages == everything
    tier_rows = queries.expiring(kind="tier", limit=100_000)
    assert tier_rows == [row for row in everything if row["kind"] == "tier"]
    window = [row for row in everything if "2024-01-01" <= row["date"] <= "2024-03-31"]
    assert queries.expiring(start=date(2024, 1, 1), end=date(2024, 3, 31), limit=10**6) == window


def test_tier_counts_count_linked_memberships(ledger: Ledger) -> None:
    receive_in_batches(ledger, STREAM)
    projector = Projector(ledger)
    projector.catch_up()
    counts: dict[tuple[Any, ...], int] = {}
    for row in folded(ledger):
        if row["status"] == "LINKED":
            key = (row["org_id"], row["partner_program_id"], row["tier_number"])
            counts[key] = counts.get(key, 0) + 1
    tiers = Queries(projector.store).tiers()
    assert {
        (r["org_id"], r["partner_program_id"], r["tier_number"]): r["memberships"] for r in tiers
    } == counts


def test_only_one_follower_per_view(ledger: Ledger) -> None:
    stop = threading.Event()
    first = Projector(ledger)
    follower = threading.Thread(target=first.follow, args=(stop,))
    follower.start()
    try:
        # The follower takes its locks before its first catch-up, which builds the views:
        # once they exist (and it is still running), the locks are held.
        deadline = time.monotonic() + 30
        while first.store.live(EXPIRY) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert follower.is_alive() and first.store.live(EXPIRY) is not None
        with pytest.raises(LockHeldError, match="another process holds the lock"):
            Projector(ledger).follow(threading.Event())
    finally:
        stop.set()
        follower.join()


def test_a_follower_makes_new_events_visible(ledger: Ledger) -> None:
    projector = Projector(ledger)
    projector.catch_up()
    stop = threading.Event()
    follower = threading.Thread(target=projector.follow, args=(stop,))
    follower.start()
    try:
        ledger.receive(STREAM[:50])
        queries = Queries(projector.store)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if list(queries.memberships()) == folded(ledger):
                break
            time.sleep(0.01)
        assert list(queries.memberships()) == folded(ledger)
    finally:
        stop.set()
        follower.join()


# --- helpers -----------------------------------------------------------------------------


def insert_poison_event(ledger: Ledger) -> Any:
    """Write an event that cannot be decoded, straight into the event store (as a bug in an
    older release, or a hand edit, might)."""
    recorder: Any = ledger.recorder
    poison = uuid4()
    originator = recorder.originator(poison)
    with recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute(
            recorder.sql(
                f"INSERT INTO {recorder.events_table} "
                "(originator_id, originator_version, topic, state) VALUES (%s, 1, %s, %s)"
            ),
            (originator, "partner_ledger.PartnerMembership.NoSuchEvent", b"{not json"),
        )
    return poison


@pytest.mark.parametrize("left", ["building", "retired"])
def test_a_rebuild_drops_what_a_killed_rebuild_left(ledger: Ledger, left: str) -> None:
    # Given a view rebuilt once, and what a rebuild killed midway leaves: a generation still
    # being built (killed before its switch), or the one it replaced, switched away from but
    # not dropped (killed after its switch)
    ledger.receive(generated(60, seed=31))
    projector = Projector(ledger)
    projector.rebuild(MEMBERSHIPS)
    store = projector.store
    orphan = store.create_generation(MEMBERSHIPS)
    if left == "retired":
        store.switch(MEMBERSHIPS, orphan)
    assert sorted(g.state for g in store.generations(MEMBERSHIPS)) == sorted(["live", left])
    # When the view is rebuilt again
    projector.rebuild(MEMBERSHIPS)
    # Then only the new live generation is left
    assert [g.state for g in store.generations(MEMBERSHIPS)] == ["live"]
