"""Reading the event log for the views, as the projections see it: the port (`EventLog`) and
the two reads the runner makes through it. The SQL behind the port is in
`infrastructure.views.log`.

A follower batch reads the touched memberships' streams; a rebuild makes one ordered scan of
the whole log. Their cost is the views' cost: one follower batch must not cost more on a
1,000,000-event log than on a 20,000-event one, and a rebuild's read should cost little beside
the decoding every reader pays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent

Stream = list[tuple[int, StoredEvent]]


class EventLog(Protocol):
    """The notification log and the stored events behind it."""

    read_ahead: bool  # whether a rebuild's next page is worth fetching on a second thread

    def last_position(self) -> int:
        """The position of the last notification (0 for an empty log)."""
        ...

    def notifications_after(self, position: int, *, limit: int) -> list[tuple[int, UUID]]:
        """(position, membership id) of the next notifications after ``position``."""
        ...

    def touched_streams(self, membership_ids: Sequence[UUID], *, up_to: int) -> dict[UUID, Stream]:
        """The stored events (with positions) at or before ``up_to`` of these memberships,
        in version order."""
        ...

    def scan(self, *, up_to: int, after: tuple[UUID, int] | None, limit: int) -> Stream:
        """Events at or before ``up_to`` in (membership, version) order, resuming after
        ``after`` (keyset pagination: no long transaction)."""
        ...

    def oldest_recorded_after(self, position: int) -> int | None:
        """The recording time (us) of the first event after ``position``, if any."""
        ...


def touched_streams(
    log: EventLog, membership_ids: Sequence[UUID], *, up_to: int
) -> dict[UUID, Stream]:
    """One catch-up batch's read (see `EventLog.touched_streams`)."""
    return log.touched_streams(membership_ids, up_to=up_to)


def pages(log: EventLog, *, up_to: int, size: int) -> Iterator[Stream]:
    """`EventLog.scan` page after page to the end; where the log reads ahead, each next page is
    fetched on a second thread while the caller works on this one (the wait for the database
    releases the GIL, so the read overlaps the caller's decoding and folding)."""
    with ThreadPoolExecutor(max_workers=1) as reader:

        def fetch(after: tuple[UUID, int] | None) -> Future[Stream]:
            if log.read_ahead:
                return reader.submit(log.scan, up_to=up_to, after=after, limit=size)
            done: Future[Stream] = Future()
            done.set_result(log.scan(up_to=up_to, after=after, limit=size))
            return done

        upcoming = fetch(None)
        while page := upcoming.result():
            last = page[-1][1]
            upcoming = fetch((_uuid(last.originator_id), last.originator_version))
            yield page


def _uuid(value: object) -> UUID:
    return value if type(value) is UUID else UUID(str(value))
