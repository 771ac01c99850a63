"""Reading the ledger's own tables: duplicates, streams, chains, times, quarantine.

A mixin for the recorders (`infrastructure.recorders`): SQL written with ``%s`` placeholders
over the recorder's own connection pool. Where the databases differ (placeholders, ``IN`` over
many values), each database's recorder overrides `sql`, `member_of` and `pairs_in`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent


class LedgerQueries:
    """The read side of `LedgerTables`; the recorder provides the attributes below."""

    events_table: str
    datastore: Any
    placeholder = "%s"
    uuid_type = "uuid"
    position_column = "notification_id"

    def sql(self, text: str) -> str:
        """A statement written with ``%s`` placeholders, as this database's driver takes it."""
        return text

    def originator(self, value: UUID) -> Any:
        return value

    @contextmanager
    def reading(self) -> Iterator[Any]:
        raise NotImplementedError

    def query(self, text: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.reading() as curs:
            curs.execute(self.sql(text), params)
            return [dict(row) for row in curs.fetchall()]

    def find_recorded(
        self, event_ids: Sequence[str], fingerprints: Sequence[str]
    ) -> tuple[dict[str, str], set[str]]:
        """Which of these eventIds (with their fingerprints) and fingerprints are recorded."""
        known_ids: dict[str, str] = {}
        known_fingerprints: set[str] = set()
        for condition, params in self.member_of("event_id", event_ids):
            for row in self.query(
                f"SELECT event_id, fingerprint FROM ledger_inbox WHERE {condition}", params
            ):
                known_ids[row["event_id"]] = row["fingerprint"]
        for condition, params in self.member_of("fingerprint", fingerprints):
            rows = self.query(f"SELECT fingerprint FROM ledger_inbox WHERE {condition}", params)
            known_fingerprints.update(row["fingerprint"] for row in rows)
        return known_ids, known_fingerprints

    def member_of(self, column: str, values: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
        """``column IN values`` as (condition, params), in as few statements as the database
        allows (each database's recorder says how)."""
        raise NotImplementedError

    def pairs_in(
        self, columns: tuple[str, str], pairs: Sequence[tuple[Any, Any]], types: tuple[str, str]
    ) -> Iterator[tuple[str, list[Any]]]:
        """``(a, b) IN pairs`` as (condition, params), like `member_of`."""
        raise NotImplementedError

    def select_streams(
        self, membership_ids: Sequence[UUID], *, up_to: int | None = None
    ) -> dict[UUID, list[tuple[int, StoredEvent]]]:
        """The stored events (with positions) of many memberships in a few round trips, in
        version order; with ``up_to``, only events at or before that position."""
        streams: dict[UUID, list[tuple[int, StoredEvent]]] = {}
        ids = [self.originator(mid) for mid in membership_ids]
        limit = "" if up_to is None else f" AND {self.position_column} <= %s"
        for condition, params in self.member_of("originator_id", ids):
            rows = self.query(
                f"SELECT originator_id, originator_version, topic, state, "
                f"{self.position_column} AS position FROM {self.events_table} "
                f"WHERE {condition}{limit} ORDER BY originator_id, originator_version",
                [*params, *(() if up_to is None else (up_to,))],
            )
            for row in rows:
                key = UUID(str(row["originator_id"]))
                streams.setdefault(key, []).append((row["position"], _stored(row)))
        return streams

    def chain_rows(self, *, after: tuple[UUID, int] | None, limit: int) -> list[dict[str, Any]]:
        """Stored events with their inbox rows, in (membership, version) order, resuming after
        ``after``. Inbox columns are null for an event that has no inbox row."""
        where, params = "", []
        if after is not None:
            where = "WHERE (e.originator_id, e.originator_version) > (%s, %s) "
            params = [self.originator(after[0]), after[1]]
        return self.query(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state, "
            f"e.{self.position_column} AS position, i.previous_hash, i.hash, i.org_id, "
            f"i.customer_id, i.partner_program_id FROM {self.events_table} e "
            "LEFT JOIN ledger_inbox i ON i.originator_id = e.originator_id "
            "AND i.originator_version = e.originator_version "
            f"{where}ORDER BY e.originator_id, e.originator_version LIMIT %s",
            [*params, limit],
        )

    def orphan_inbox_rows(self) -> list[dict[str, Any]]:
        """Inbox rows whose event is gone from the event store."""
        return self.query(
            "SELECT i.originator_id, i.originator_version, i.org_id, i.customer_id, "
            "i.partner_program_id, i.hash FROM ledger_inbox i "
            f"LEFT JOIN {self.events_table} e ON e.originator_id = i.originator_id "
            "AND e.originator_version = i.originator_version WHERE e.originator_id IS NULL "
            "ORDER BY i.originator_id, i.originator_version"
        )

    def mismatched_snapshots(self) -> list[dict[str, Any]]:
        """Snapshots (``ledger_heads``) that are not at their membership's last inbox row
        (version and hash)."""
        return self.query(
            "SELECT h.originator_id, h.originator_version, h.hash, i.hash AS inbox_hash, "
            "i.org_id, i.customer_id, i.partner_program_id FROM ledger_heads h "
            "LEFT JOIN (SELECT originator_id, MAX(originator_version) AS last_version "
            "FROM ledger_inbox GROUP BY originator_id) m ON m.originator_id = h.originator_id "
            "LEFT JOIN ledger_inbox i ON i.originator_id = h.originator_id "
            "AND i.originator_version = h.originator_version "
            "WHERE m.last_version IS NULL OR m.last_version <> h.originator_version "
            "OR i.hash IS NULL OR i.hash <> h.hash ORDER BY h.originator_id"
        )

    def log_rows(self, *, after: int, up_to: int | None, limit: int) -> list[tuple[int, str]]:
        """(position, chain hash) in notification order after ``after``."""
        bound = "" if up_to is None else f" AND e.{self.position_column} <= %s"
        rows = self.query(
            f"SELECT e.{self.position_column} AS position, i.hash FROM {self.events_table} e "
            "LEFT JOIN ledger_inbox i ON i.originator_id = e.originator_id "
            "AND i.originator_version = e.originator_version "
            f"WHERE e.{self.position_column} > %s{bound} "
            f"ORDER BY e.{self.position_column} LIMIT %s",
            [after, *(() if up_to is None else (up_to,)), limit],
        )
        return [(int(row["position"]), row["hash"] or "") for row in rows]

    def checkpoints(self) -> list[dict[str, Any]]:
        return self.query("SELECT position, events, digest FROM ledger_digests ORDER BY position")

    def add_checkpoints(self, rows: Sequence[tuple[int, int, str]]) -> None:
        with self.datastore.transaction(commit=True) as curs:
            for position, events, digest in rows:
                curs.execute(
                    self.sql(
                        "INSERT INTO ledger_digests (position, events, digest, created_at_us) "
                        "VALUES (%s, %s, %s, %s) ON CONFLICT (position) DO NOTHING"
                    ),
                    (position, events, digest, time.time_ns() // 1000),
                )

    def select_snapshots(self, membership_ids: Sequence[UUID]) -> dict[UUID, tuple[int, str, str]]:
        """Each membership's stored snapshot: (version, encoded snapshot, chain tip); the
        table and column keep their stored names (``ledger_heads``, ``head``)."""
        found: dict[UUID, tuple[int, str, str]] = {}
        ids = [self.originator(mid) for mid in membership_ids]
        for condition, params in self.member_of("originator_id", ids):
            for row in self.query(
                "SELECT originator_id, originator_version, head, hash FROM ledger_heads "
                f"WHERE {condition}",
                params,
            ):
                found[UUID(str(row["originator_id"]))] = (
                    row["originator_version"],
                    row["head"],
                    row["hash"],
                )
        return found

    def chain_tips(self, versions: Sequence[tuple[UUID, int]]) -> dict[UUID, str]:
        """The chain hash of each (membership, version): the link the next event hangs on."""
        found: dict[UUID, str] = {}
        pairs = [(self.originator(mid), version) for mid, version in versions if version > 0]
        for condition, params in self.pairs_in(
            ("originator_id", "originator_version"), pairs, (self.uuid_type, "bigint")
        ):
            for row in self.query(
                f"SELECT originator_id, hash FROM ledger_inbox WHERE {condition}", params
            ):
                found[UUID(str(row["originator_id"]))] = row["hash"]
        return found

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
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        rows = self.query(
            "SELECT originator_id, org_id, customer_id, partner_program_id FROM ledger_inbox "
            f"{where}GROUP BY originator_id, org_id, customer_id, partner_program_id "
            "ORDER BY org_id, customer_id, partner_program_id",
            params,
        )
        return [UUID(str(row["originator_id"])) for row in rows]

    def membership_ids(self) -> list[UUID]:
        rows = self.query("SELECT DISTINCT originator_id FROM ledger_inbox")
        return [UUID(str(row["originator_id"])) for row in rows]

    def quarantined(self, *, include_resolved: bool = False) -> list[dict[str, Any]]:
        where = "" if include_resolved else "WHERE resolved_at_us IS NULL "
        return self.query(
            "SELECT id, reason, detail, received_at_us, last_received_at_us, times_received, "
            f"resolved_at_us, resolution, source FROM ledger_quarantine {where}"
            "ORDER BY received_at_us, id"
        )

    def quarantine_entry(self, id_prefix: str) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT * FROM ledger_quarantine WHERE id LIKE %s ORDER BY id LIMIT 2",
            (id_prefix.replace("%", "").replace("_", "") + "%",),
        )
        for row in rows:
            row["raw"] = bytes(row["raw"])
        return rows

    def quarantine_payloads(self, ids: Sequence[str]) -> dict[str, bytes]:
        """The raw bytes of the quarantine entries with these (whole) ids, in one read."""
        found: dict[str, bytes] = {}
        for condition, params in self.member_of("id", list(ids)):
            for row in self.query(
                f"SELECT id, raw FROM ledger_quarantine WHERE {condition}", params
            ):
                found[row["id"]] = bytes(row["raw"])
        return found

    def keep_sources(self, sources: dict[str, str]) -> None:
        """Note where quarantine entries came from; the first source known stays."""
        with self.datastore.transaction(commit=True) as curs:
            for qid, source in sources.items():
                curs.execute(
                    self.sql(
                        "UPDATE ledger_quarantine SET source = %s WHERE id = %s AND source IS NULL"
                    ),
                    (source, qid),
                )

    def drop_quarantined(self, ids: Sequence[str], *, why: str, at_us: int) -> list[str]:
        """Close open entries as dropped, with why and when; their bytes stay. Returns the
        ids closed (an entry already closed is left as it was)."""
        if not ids:
            return []
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self.sql(
                    f"SELECT id FROM ledger_quarantine WHERE id IN ({marks(ids)}) "
                    "AND resolved_at_us IS NULL"
                ),
                list(ids),
            )
            open_ids = {row["id"] for row in curs.fetchall()}
            dropped = [qid for qid in ids if qid in open_ids]
            for qid in dropped:
                curs.execute(
                    self.sql(
                        "UPDATE ledger_quarantine SET resolved_at_us = %s, resolution = %s "
                        "WHERE id = %s"
                    ),
                    (at_us, f"dropped: {why}", qid),
                )
        return dropped

    def counts(self) -> dict[str, int]:
        (row,) = self.query(
            "SELECT (SELECT COUNT(*) FROM ledger_inbox) AS recorded, "
            "(SELECT COUNT(*) FROM ledger_quarantine WHERE resolved_at_us IS NULL) AS quarantined"
        )
        return {key: int(value) for key, value in row.items()}


def _stored(row: dict[str, Any]) -> StoredEvent:
    return StoredEvent(
        originator_id=UUID(str(row["originator_id"])),
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
    )


def chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(chunk: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(chunk))
