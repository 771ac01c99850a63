"""The views' reads of the event log (`projections.log.EventLog`, implemented) in the SQL of
the recorder's own tables, over its connection pool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from infrastructure.dbapi import Cursor, Datastore
from infrastructure.ledger_queries import LedgerQueries
from projections.log import Stream


class LogRecorder(Protocol):
    """What the log reads need of a ledger recorder beyond `LedgerQueries`."""

    def max_notification_id(self) -> int | None: ...

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]: ...


class RecorderLog:
    """The log as the views read it. The database's module says whether to read ahead and
    how a cursor gives rows as tuples (`_tuples`)."""

    read_ahead = False

    def __init__(self, queries: LedgerQueries[Datastore], notifications: LogRecorder) -> None:
        self.queries = queries
        self.notifications = notifications

    def last_position(self) -> int:
        return int(self.notifications.max_notification_id() or 0)

    def notifications_after(self, position: int, *, limit: int) -> list[tuple[int, UUID]]:
        rows = self.notifications.select_notifications(
            start=position, limit=limit, inclusive_of_start=False
        )
        return [(row.id, _uuid(row.originator_id)) for row in rows]

    def oldest_recorded_after(self, position: int) -> int | None:
        return self.queries.oldest_recorded_after(position)

    def touched_streams(self, membership_ids: Sequence[UUID], *, up_to: int) -> dict[UUID, Stream]:
        """The bound is applied here, not in SQL. A catch-up batch ends near the last position, so
        ``position <= up_to`` matches almost the whole log; in the WHERE clause it let
        PostgreSQL, when the events table has no planner statistics (autovacuum off, or not run
        yet), AND a bitmap of the whole position index with the primary key's: 100-150 ms per
        batch and view at 946,000 events, growing with the log. Events after ``up_to`` of the
        same memberships are rare and few."""
        queries = self.queries
        streams: dict[UUID, Stream] = {}
        ids = [queries.originator(mid) for mid in membership_ids]
        for condition, params in queries.member_of("originator_id", ids):
            rows = self._rows(
                f"SELECT {self._columns()} FROM {queries.events_table} WHERE {condition} "
                "ORDER BY originator_id, originator_version",
                params,
            )
            for position, stored in rows:
                if position <= up_to:
                    streams.setdefault(_uuid(stored.originator_id), []).append((position, stored))
        return streams

    def scan(self, *, up_to: int, after: tuple[UUID, int] | None, limit: int) -> Stream:
        """A rebuild's one pass over the log, a page at a time (keyset pagination)."""
        queries = self.queries
        where = f"{queries.position_column} <= %s"
        params: list[Any] = [up_to]
        if after is not None:
            where += " AND (originator_id, originator_version) > (%s, %s)"
            params += [queries.originator(after[0]), after[1]]
        return self._rows(
            f"SELECT {self._columns()} FROM {queries.events_table} WHERE {where} "
            "ORDER BY originator_id, originator_version LIMIT %s",
            [*params, limit],
        )

    def _columns(self) -> str:
        return f"{self.queries.position_column}, originator_id, originator_version, topic, state"

    def _tuples(self, cursor: Cursor) -> None:
        """Make ``cursor`` return plain tuples (SQLite's rows unpack as they are)."""

    def _rows(self, text: str, params: Sequence[Any]) -> Stream:
        """(position, stored event) rows, built straight from tuples: a dict per row and a
        UUID parsed back from its own string cost a third of a rebuild's read."""
        with self.queries.reading() as cursor:
            self._tuples(cursor)
            cursor.execute(self.queries.sql(text), params)
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


def _uuid(value: object) -> UUID:
    return value if type(value) is UUID else UUID(str(value))
