"""Reading the event log for the views: the touched memberships' streams, and the ordered scan
a rebuild makes of the whole log.

The recorder has general reads (``select_streams``, ``scan_streams``); these two are narrower
and live here because their cost is the views' cost: one follower batch must not cost more on a
1,000,000-event log than on a 20,000-event one, and a rebuild's read should cost little beside
the decoding every reader pays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg.rows import tuple_row

Stream = list[tuple[int, StoredEvent]]


def touched_streams(
    recorder: Any, membership_ids: Sequence[UUID], *, up_to: int
) -> dict[UUID, Stream]:
    """The stored events (with positions) at or before ``up_to`` of these memberships, in
    version order.

    The bound is applied here, not in SQL. A catch-up batch ends near the head, so
    ``position <= up_to`` matches almost the whole log; in the WHERE clause it let PostgreSQL,
    when the events table has no planner statistics (autovacuum off, or not run yet), AND a
    bitmap of the whole position index with the primary key's: 100-150 ms per batch and view
    at 946,000 events, growing with the log. Events after ``up_to`` of the same memberships
    are rare and few."""
    streams: dict[UUID, Stream] = {}
    ids = [recorder.originator(mid) for mid in membership_ids]
    for condition, params in recorder.member_of("originator_id", ids):
        rows = _rows(
            recorder,
            f"SELECT {_COLUMNS.format(position=recorder.position_column)} "
            f"FROM {recorder.events_table} WHERE {condition} "
            "ORDER BY originator_id, originator_version",
            params,
        )
        for position, stored in rows:
            if position <= up_to:
                streams.setdefault(_uuid(stored.originator_id), []).append((position, stored))
    return streams


def pages(recorder: Any, *, up_to: int, size: int, read_ahead: bool) -> Iterator[Stream]:
    """`scan` page after page to the end; with ``read_ahead``, each next page is fetched on a
    second thread while the caller works on this one (the wait for the database releases the
    GIL, so the read overlaps the caller's decoding and folding)."""
    with ThreadPoolExecutor(max_workers=1) as reader:

        def fetch(after: tuple[UUID, int] | None) -> Future[Stream]:
            if read_ahead:
                return reader.submit(scan, recorder, up_to=up_to, after=after, limit=size)
            done: Future[Stream] = Future()
            done.set_result(scan(recorder, up_to=up_to, after=after, limit=size))
            return done

        upcoming = fetch(None)
        while page := upcoming.result():
            last = page[-1][1]
            upcoming = fetch((_uuid(last.originator_id), last.originator_version))
            yield page


def scan(recorder: Any, *, up_to: int, after: tuple[UUID, int] | None, limit: int) -> Stream:
    """Events at or before ``up_to`` in (membership, version) order, resuming after ``after``
    (keyset pagination: no long transaction): a rebuild's one pass over the log."""
    where = f"{recorder.position_column} <= %s"
    params: list[Any] = [up_to]
    if after is not None:
        where += " AND (originator_id, originator_version) > (%s, %s)"
        params += [recorder.originator(after[0]), after[1]]
    return _rows(
        recorder,
        f"SELECT {_COLUMNS.format(position=recorder.position_column)} "
        f"FROM {recorder.events_table} WHERE {where} "
        "ORDER BY originator_id, originator_version LIMIT %s",
        [*params, limit],
    )


_COLUMNS = "{position}, originator_id, originator_version, topic, state"


def _rows(recorder: Any, text: str, params: Sequence[Any]) -> Stream:
    """(position, stored event) rows, built straight from tuples: a dict per row and a UUID
    parsed back from its own string cost a third of a rebuild's read."""
    with recorder.reading() as cursor:
        if recorder.placeholder == "%s":  # psycopg; SQLite's rows unpack as they are
            cursor.row_factory = tuple_row
        cursor.execute(recorder.sql(text), params)
        return [
            (
                position,
                StoredEvent(
                    originator_id=_uuid(originator_id),
                    originator_version=version,
                    topic=topic,
                    state=state if type(state) is bytes else bytes(state),
                ),
            )
            for position, originator_id, version, topic, state in cursor.fetchall()
        ]


def _uuid(value: Any) -> UUID:
    return value if type(value) is UUID else UUID(str(value))
