"""What is recorded: duplicates, the events of many memberships, positions, recording times
and the memberships a period or a program has."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from infrastructure.ledger_queries.base import D, QueryBase, stored


class RecordedQueries(QueryBase[D]):
    """Reads of the inbox and the events table."""

    def find_recorded(
        self, event_ids: Sequence[str], fingerprints: Sequence[str]
    ) -> tuple[dict[str, str], set[str]]:
        """Which of these eventIds (with their fingerprints) and fingerprints are recorded:
        one query whatever the batch's size (the classify stage's one look at the store),
        each side served by its unique index."""
        wanted_ids, wanted_fingerprints = set(event_ids), set(fingerprints)
        conditions, params = [], []
        for column, values in (("event_id", wanted_ids), ("fingerprint", wanted_fingerprints)):
            if values:
                condition, values_params = self.one_of(column, list(values))
                conditions.append(condition)
                params.extend(values_params)
        known_ids: dict[str, str] = {}
        known_fingerprints: set[str] = set()
        if not conditions:
            return known_ids, known_fingerprints
        for row in self.query(
            f"SELECT event_id, fingerprint FROM ledger_inbox WHERE {' OR '.join(conditions)}",
            params,
        ):
            if row["event_id"] in wanted_ids:
                known_ids[row["event_id"]] = row["fingerprint"]
            if row["fingerprint"] in wanted_fingerprints:
                known_fingerprints.add(row["fingerprint"])
        return known_ids, known_fingerprints

    def select_streams(
        self, membership_ids: Sequence[UUID]
    ) -> dict[UUID, list[tuple[int, StoredEvent]]]:
        """The stored events (with positions) of many memberships in a few round trips, in
        version order."""
        streams: dict[UUID, list[tuple[int, StoredEvent]]] = {}
        ids = [self.originator(mid) for mid in membership_ids]
        for condition, params in self.member_of("originator_id", ids):
            rows = self.query(
                f"SELECT originator_id, originator_version, topic, state, "
                f"{self.position_column} AS position FROM {self.events_table} "
                f"WHERE {condition} ORDER BY originator_id, originator_version",
                params,
            )
            for row in rows:
                key = UUID(str(row["originator_id"]))
                streams.setdefault(key, []).append((row["position"], stored(row)))
        return streams

    def oldest_recorded_after(self, position: int) -> int | None:
        """Recording time (epoch microseconds) of the first event after ``position``."""
        rows = self.query(
            f"SELECT i.recorded_at_us FROM {self.events_table} e JOIN ledger_inbox i "
            "ON i.originator_id = e.originator_id AND i.originator_version = e.originator_version "
            f"WHERE e.{self.position_column} > %s ORDER BY e.{self.position_column} LIMIT 1",
            (position,),
        )
        return int(rows[0]["recorded_at_us"]) if rows else None

    def positions(self, membership_id: UUID) -> dict[int, int]:
        """version -> position (notification id) for one membership's events."""
        rows = self.query(
            f"SELECT i.originator_version AS version, e.{self.position_column} AS position "
            f"FROM ledger_inbox i JOIN {self.events_table} e "
            "ON e.originator_id = i.originator_id AND e.originator_version = i.originator_version "
            "WHERE i.originator_id = %s",
            (self.originator(membership_id),),
        )
        return {row["version"]: row["position"] for row in rows}

    def membership_keys(
        self,
        *,
        org_id: int | None = None,
        partner_program_id: int | None = None,
        recorded_from_us: int | None = None,
        recorded_to_us: int | None = None,
        occurred_to_ms: int | None = None,
    ) -> list[UUID]:
        """Memberships with at least one event matching every given bound, in key order."""
        where, params = _bounds(
            org_id, partner_program_id, recorded_from_us, recorded_to_us, occurred_to_ms
        )
        rows = self.query(
            "SELECT originator_id, org_id, customer_id, partner_program_id FROM ledger_inbox "
            f"{where}GROUP BY originator_id, org_id, customer_id, partner_program_id "
            "ORDER BY org_id, customer_id, partner_program_id",
            params,
        )
        return [UUID(str(row["originator_id"])) for row in rows]

    def count_memberships(
        self,
        *,
        org_id: int | None = None,
        partner_program_id: int | None = None,
        recorded_from_us: int | None = None,
        recorded_to_us: int | None = None,
    ) -> int:
        """How many memberships `membership_keys` would return for these bounds, counted by
        the database: one row back instead of one per membership."""
        where, params = _bounds(org_id, partner_program_id, recorded_from_us, recorded_to_us)
        (row,) = self.query(
            f"SELECT COUNT(DISTINCT originator_id) AS memberships FROM ledger_inbox {where}",
            params,
        )
        return int(row["memberships"])


def _bounds(
    org_id: int | None,
    partner_program_id: int | None,
    recorded_from_us: int | None,
    recorded_to_us: int | None,
    occurred_to_ms: int | None = None,
) -> tuple[str, list[int]]:
    """The inbox rows within every given bound: a WHERE clause (or nothing) and its values."""
    conditions, params = [], []
    for clause, value in (
        ("org_id = %s", org_id),
        ("partner_program_id = %s", partner_program_id),
        ("recorded_at_us >= %s", recorded_from_us),
        ("recorded_at_us <= %s", recorded_to_us),
        ("occurred_at_ms <= %s", occurred_to_ms),
    ):
        if value is not None:
            conditions.append(clause)
            params.append(value)
    return (f"WHERE {' AND '.join(conditions)} " if conditions else ""), params
