"""Application recorders that keep the inbox and the quarantine beside the events.

The library's recorders store events; ours also write, in the **same transaction**:

- ``ledger_inbox``: one row per recorded notification (membership id, version, fingerprint,
  eventId, occurrence and recording time). Its unique indexes make duplicate detection
  permanent and atomic with the write: two concurrent deliveries of one notification cannot
  both commit; the loser gets an ``IntegrityError`` and the ledger retries, finding a duplicate.
- ``ledger_quarantine``: raw bytes of every payload that could not be recorded, keyed by the
  SHA-256 of those bytes, with a reason code, a sentence, and receipt times.

The rows travel as keyword arguments of ``Application.save()``, which the library passes down
to ``insert_events()``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from psycopg.sql import SQL, Composed

from domain.integrity import chain_hash
from domain.ledger import InboxRow, QuarantineRow, Resolution
from infrastructure.vault import IdentifierVault

SCHEMA_LOCK = 7_261_129_001  # advisory lock key: creating or migrating the ledger's tables

INBOX_COLUMNS = (
    "originator_id",
    "originator_version",
    "org_id",
    "customer_id",
    "partner_program_id",
    "fingerprint",
    "event_id",
    "occurred_at_ms",
    "recorded_at_us",
    "previous_hash",
    "hash",
)


class LedgerTables:
    """SQL shared by both databases: written with ``%s`` placeholders; SQLite swaps in ``?``."""

    events_table: str
    datastore: Any
    placeholder = "%s"
    uuid_type = "uuid"
    bytes_type = "bytea"

    def ledger_ddl(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS ledger_inbox ("
            f"originator_id {self.uuid_type} NOT NULL, originator_version BIGINT NOT NULL, "
            "org_id BIGINT NOT NULL, customer_id BIGINT NOT NULL, "
            "partner_program_id BIGINT NOT NULL, "
            "fingerprint TEXT NOT NULL, event_id TEXT, occurred_at_ms BIGINT NOT NULL, "
            "recorded_at_us BIGINT NOT NULL, previous_hash TEXT NOT NULL, hash TEXT NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version))",
            "CREATE INDEX IF NOT EXISTS ledger_inbox_recorded "
            "ON ledger_inbox (org_id, recorded_at_us)",
            "CREATE INDEX IF NOT EXISTS ledger_inbox_key "
            "ON ledger_inbox (org_id, customer_id, partner_program_id)",
            "CREATE TABLE IF NOT EXISTS ledger_customer_keys (org_id BIGINT NOT NULL, "
            f"customer_id BIGINT NOT NULL, key {self.bytes_type}, created_at_us BIGINT NOT NULL, "
            "forgotten_at_us BIGINT, PRIMARY KEY (org_id, customer_id))",
            "CREATE TABLE IF NOT EXISTS ledger_digests (position BIGINT PRIMARY KEY, "
            "events BIGINT NOT NULL, digest TEXT NOT NULL, created_at_us BIGINT NOT NULL)",
            "CREATE UNIQUE INDEX IF NOT EXISTS ledger_inbox_fingerprint "
            "ON ledger_inbox (fingerprint)",
            "CREATE UNIQUE INDEX IF NOT EXISTS ledger_inbox_event_id ON ledger_inbox (event_id)",
            "CREATE TABLE IF NOT EXISTS ledger_quarantine ("
            f"id TEXT PRIMARY KEY, raw {self.bytes_type} NOT NULL, reason TEXT NOT NULL, "
            "detail TEXT NOT NULL, received_at_us BIGINT NOT NULL, "
            "last_received_at_us BIGINT NOT NULL, times_received BIGINT NOT NULL, "
            "resolved_at_us BIGINT, resolution TEXT)",
            "CREATE INDEX IF NOT EXISTS ledger_quarantine_open "
            "ON ledger_quarantine (resolved_at_us, received_at_us)",
        ]

    # --- statements ----------------------------------------------------------------------

    def sql(self, text: str) -> str:
        return text if self.placeholder == "%s" else text.replace("%s", self.placeholder)

    def originator(self, value: UUID) -> Any:
        return value

    def _write_quarantine(self, curs: Any, rows: Sequence[QuarantineRow]) -> None:
        for row in rows:
            curs.execute(
                self.sql(
                    "INSERT INTO ledger_quarantine (id, raw, reason, detail, received_at_us, "
                    "last_received_at_us, times_received) VALUES (%s, %s, %s, %s, %s, %s, 1) "
                    "ON CONFLICT (id) DO UPDATE SET reason = excluded.reason, "
                    "detail = excluded.detail, resolved_at_us = NULL, resolution = NULL, "
                    # A replay is not a receipt: only a new delivery moves these two.
                    "last_received_at_us = CASE WHEN %s = 1 THEN excluded.last_received_at_us "
                    "ELSE ledger_quarantine.last_received_at_us END, "
                    "times_received = ledger_quarantine.times_received + %s"
                ),
                (
                    row.id,
                    row.raw,
                    row.reason,
                    row.detail,
                    row.received_at_us,
                    row.received_at_us,
                    1 if row.is_receipt else 0,
                    1 if row.is_receipt else 0,
                ),
            )

    def _write_resolutions(self, curs: Any, rows: Sequence[Resolution]) -> None:
        for row in rows:
            curs.execute(
                self.sql(
                    "UPDATE ledger_quarantine SET resolved_at_us = %s, resolution = %s "
                    "WHERE id = %s"
                ),
                (row.resolved_at_us, row.resolution, row.id),
            )

    def _write_inbox(
        self, curs: Any, rows: Sequence[InboxRow], stored_events: Sequence[StoredEvent]
    ) -> None:
        """Inbox rows, each with its event's chain hash (computed over the stored bytes)."""
        if not rows:
            return
        stored = {(e.originator_id, e.originator_version): e for e in stored_events}
        heads: dict[UUID, str] = {}
        values = []
        for row in rows:
            event = stored[(row.membership_id, row.version)]
            previous = heads.get(row.membership_id, row.previous_hash)
            digest = chain_hash(
                previous,
                membership_id=row.membership_id,
                version=row.version,
                topic=event.topic,
                state=event.state,
            )
            heads[row.membership_id] = digest
            values.append(
                (
                    self.originator(row.membership_id),
                    row.version,
                    row.org_id,
                    row.customer_id,
                    row.partner_program_id,
                    row.fingerprint,
                    row.event_id,
                    row.occurred_at_ms,
                    row.recorded_at_us,
                    previous,
                    digest,
                )
            )
        marks = ", ".join(["%s"] * len(INBOX_COLUMNS))
        curs.executemany(
            self.sql(f"INSERT INTO ledger_inbox ({', '.join(INBOX_COLUMNS)}) VALUES ({marks})"),
            values,
        )

    # --- personal data -------------------------------------------------------------------

    @property
    def vault(self) -> IdentifierVault:
        return IdentifierVault(self)

    def seal(self, items: Sequence[tuple[int, int, dict[str, str]]]) -> list[str | None]:
        return self.vault.seal(items)

    def unseal(self, org: int, customer: int, sealed: str | None) -> dict[str, str] | None:
        return self.vault.unseal(org, customer, sealed)

    def forget(self, org: int, customer: int) -> bool:
        return self.vault.forget(org, customer)

    # --- queries -------------------------------------------------------------------------

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
        allows: one array parameter on PostgreSQL, chunks of placeholders on SQLite."""
        if not values:
            return
        if self.placeholder == "%s":
            yield f"{column} = ANY(%s)", [list(values)]
            return
        for chunk in _chunks(list(values)):
            yield f"{column} IN ({_marks(chunk)})", chunk

    def pairs_in(
        self, columns: tuple[str, str], pairs: Sequence[tuple[Any, Any]], types: tuple[str, str]
    ) -> Iterator[tuple[str, list[Any]]]:
        """``(a, b) IN pairs`` as (condition, params), like `member_of`."""
        if not pairs:
            return
        first, second = columns
        if self.placeholder == "%s":
            yield (
                f"({first}, {second}) IN (SELECT * FROM unnest(%s::{types[0]}[], "
                f"%s::{types[1]}[]))",
                [[a for a, _ in pairs], [b for _, b in pairs]],
            )
            return
        for chunk in _chunks(list(pairs), 250):
            condition = " OR ".join([f"({first} = %s AND {second} = %s)"] * len(chunk))
            yield f"({condition})", [value for pair in chunk for value in pair]

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

    def scan_streams(
        self, *, up_to: int, after: tuple[UUID, int] | None, limit: int
    ) -> list[tuple[int, StoredEvent]]:
        """Events at or before ``up_to`` in (membership, version) order, resuming after
        ``after``: how a rebuild reads the whole log one membership at a time."""
        where = f"{self.position_column} <= %s"
        params: list[Any] = [up_to]
        if after is not None:
            where += " AND (originator_id, originator_version) > (%s, %s)"
            params += [self.originator(after[0]), after[1]]
        rows = self.query(
            f"SELECT originator_id, originator_version, topic, state, "
            f"{self.position_column} AS position FROM {self.events_table} WHERE {where} "
            "ORDER BY originator_id, originator_version LIMIT %s",
            [*params, limit],
        )
        return [(row["position"], _stored(row)) for row in rows]

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

    def chain_heads(self, heads: Sequence[tuple[UUID, int]]) -> dict[UUID, str]:
        """The chain hash of each (membership, version): the link the next event hangs on."""
        found: dict[UUID, str] = {}
        pairs = [(self.originator(mid), version) for mid, version in heads if version > 0]
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
            f"resolved_at_us, resolution FROM ledger_quarantine {where}"
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

    def counts(self) -> dict[str, int]:
        (row,) = self.query(
            "SELECT (SELECT COUNT(*) FROM ledger_inbox) AS recorded, "
            "(SELECT COUNT(*) FROM ledger_quarantine WHERE resolved_at_us IS NULL) AS quarantined"
        )
        return {key: int(value) for key, value in row.items()}

    position_column = "notification_id"


def _stored(row: dict[str, Any]) -> StoredEvent:
    return StoredEvent(
        originator_id=UUID(str(row["originator_id"])),
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
    )


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(chunk: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(chunk))


class PostgresLedgerRecorder(LedgerTables, PostgresApplicationRecorder):
    """PostgreSQL: quarantine rows are written before the library's table lock, inbox rows
    after it, so every writer takes locks in the same order and none can deadlock."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.events_table = events_table_name
        self.sql_create_statements.extend(Composed([SQL(s)]) for s in self.ledger_ddl())

    @contextmanager
    def reading(self) -> Iterator[Any]:
        # Autocommit, one statement: one round trip instead of BEGIN, SELECT, ROLLBACK.
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            yield curs

    def create_table(self) -> None:
        """Create types and tables under an advisory lock: processes starting together on a
        new database would otherwise race on PostgreSQL's catalog and fail."""
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
            try:
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))

    def _insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._write_quarantine(curs, kwargs.get("quarantine", ()))
        self._write_resolutions(curs, kwargs.get("resolutions", ()))

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_stored_events(curs, stored_events, **kwargs)
        # A second cursor: the first one still holds the RETURNING rows the library reads.
        with curs.connection.cursor() as inbox_cursor:
            self._write_inbox(inbox_cursor, kwargs.get("inbox", ()), stored_events)


class SQLiteLedgerRecorder(LedgerTables, SQLiteApplicationRecorder):
    """SQLite: one writer at a time, so everything goes in the library's one transaction."""

    placeholder = "?"
    uuid_type = "TEXT"
    bytes_type = "BLOB"
    position_column = "rowid"

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)
        self.events_table = events_table_name

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *self.ledger_ddl()]

    def originator(self, value: UUID) -> Any:
        return value.hex

    @contextmanager
    def reading(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as curs:
            yield curs

    def _insert_events(
        self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._write_quarantine(c, kwargs.get("quarantine", ()))
        self._write_resolutions(c, kwargs.get("resolutions", ()))
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        self._write_inbox(c, kwargs.get("inbox", ()), stored_events)
        return notification_ids
