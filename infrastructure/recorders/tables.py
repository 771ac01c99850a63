"""The ledger's own tables, defined once for both databases: their columns, their DDL, the
SQL that writes them, and the advisory lock keys. Each database's recorder
(`infrastructure.recorders.postgres`, `.sqlite`) adds what its driver does differently."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.integrity import chain_hash
from domain.rows import CustomerKeyRow, InboxRow, QuarantineRow, Resolution, Sealed, SnapshotRow
from infrastructure.dbapi import Cursor
from infrastructure.ledger_queries import LedgerQueries
from infrastructure.ledger_queries.base import D
from infrastructure.vault import IdentifierVault

C = TypeVar("C", bound=Cursor)  # the cursor of the database's driver

SCHEMA_LOCK = 7_261_129_001  # advisory lock key: creating or migrating the ledger's tables
WRITER_LOCK = 7_261_129_002  # advisory lock key: one batch being recorded at a time

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
# Columns added to tables after their first release: (table, column), nullable TEXT.
ADDED_COLUMNS = (("ledger_quarantine", "source"),)
# Indexes earlier releases made and this one drops: ledger_inbox_key (org, customer, program)
# served no query (the period history reads ledger_inbox_recorded; EXPLAIN and the bench's
# period-history row in docs/benchmarks.md) and cost every recorded notification its update.
RETIRED_INDEXES = ("ledger_inbox_key",)
MIGRATIONS = (
    *(
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} TEXT"
        for table, column in ADDED_COLUMNS
    ),
    *(f"DROP INDEX IF EXISTS {name}" for name in RETIRED_INDEXES),
)
SNAPSHOT_COLUMNS = ("originator_id", "originator_version", "head", "hash")
KEY_COLUMNS = ("org_id", "customer_id", "key", "created_at_us")
# A snapshot only ever moves forward (a writer that lost a race does not commit anyway).
SNAPSHOT_UPSERT = (
    " ON CONFLICT (originator_id) DO UPDATE SET originator_version = "
    "excluded.originator_version, head = excluded.head, hash = excluded.hash "
    "WHERE excluded.originator_version > ledger_heads.originator_version"
)
COLUMN_TYPES = {
    "head": "text",
    "originator_id": "uuid",
    "originator_version": "bigint",
    "org_id": "bigint",
    "customer_id": "bigint",
    "partner_program_id": "bigint",
    "fingerprint": "text",
    "event_id": "text",
    "occurred_at_ms": "bigint",
    "recorded_at_us": "bigint",
    "previous_hash": "text",
    "hash": "text",
    "key": "bytea",
    "created_at_us": "bigint",
}


class LedgerTables(LedgerQueries[D], Generic[D, C]):
    """The ledger's SQL that both databases share, written with ``%s`` placeholders (each
    database's recorder says how its driver spells them, `LedgerQueries.sql`)."""

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
            "resolved_at_us BIGINT, resolution TEXT, source TEXT)",
            "CREATE INDEX IF NOT EXISTS ledger_quarantine_open "
            "ON ledger_quarantine (resolved_at_us, received_at_us)",
            # Membership snapshots (`domain.membership.Snapshot`); "heads" is the stored name.
            "CREATE TABLE IF NOT EXISTS ledger_heads ("
            f"originator_id {self.uuid_type} PRIMARY KEY, originator_version BIGINT NOT NULL, "
            "head TEXT NOT NULL, hash TEXT NOT NULL)",
        ]

    # --- statements ----------------------------------------------------------------------

    def _write_quarantine(self, curs: C, rows: Sequence[QuarantineRow]) -> None:
        for row in rows:
            curs.execute(
                self.sql(
                    "INSERT INTO ledger_quarantine (id, raw, reason, detail, received_at_us, "
                    "last_received_at_us, times_received, source) "
                    "VALUES (%s, %s, %s, %s, %s, %s, 1, %s) "
                    "ON CONFLICT (id) DO UPDATE SET reason = excluded.reason, "
                    # The first source known stays.
                    "source = COALESCE(ledger_quarantine.source, excluded.source), "
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
                    row.source,
                    1 if row.is_receipt else 0,
                    1 if row.is_receipt else 0,
                ),
            )

    def _write_keys(self, curs: C, rows: Sequence[CustomerKeyRow]) -> None:
        """New customer keys, in the events' transaction. No ``ON CONFLICT``: a key another
        writer (or ``forget``) made meanwhile is a conflict, and the batch is tried again."""
        if rows:
            values = [(r.org_id, r.customer_id, r.key, r.created_at_us) for r in rows]
            self._insert_rows(curs, "ledger_customer_keys", KEY_COLUMNS, values)

    def _write_resolutions(self, curs: C, rows: Sequence[Resolution]) -> None:
        for row in rows:
            curs.execute(
                self.sql(
                    "UPDATE ledger_quarantine SET resolved_at_us = %s, resolution = %s "
                    "WHERE id = %s"
                ),
                (row.resolved_at_us, row.resolution, row.id),
            )

    def _write_inbox(
        self, curs: C, rows: Sequence[InboxRow], stored_events: Sequence[StoredEvent]
    ) -> dict[UUID, str]:
        """Inbox rows, each with its event's chain hash (computed over the stored bytes);
        returns each membership's new chain tip (its last event's hash)."""
        if not rows:
            return {}
        stored = {(e.originator_id, e.originator_version): e for e in stored_events}
        tips: dict[UUID, str] = {}
        values = []
        for row in rows:
            event = stored[(row.membership_id, row.version)]
            previous = tips.get(row.membership_id, row.previous_hash)
            digest = chain_hash(
                previous,
                membership_id=row.membership_id,
                version=row.version,
                topic=event.topic,
                state=event.state,
            )
            tips[row.membership_id] = digest
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
        self._append_rows(curs, "ledger_inbox", INBOX_COLUMNS, values)
        return tips

    def _append_rows(
        self,
        curs: Any,
        table: str,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        *,
        types: Sequence[str] | None = None,
    ) -> None:
        """Rows appended with no conflict to resolve, the fastest way this database has
        (``types``: the columns' database types, when not those of `COLUMN_TYPES`)."""
        self._insert_rows(curs, table, columns, rows)

    def _insert_rows(
        self,
        curs: C,
        table: str,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        suffix: str = "",
    ) -> None:
        marks = ", ".join(["%s"] * len(columns))
        curs.executemany(
            self.sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){suffix}"),
            rows,
        )

    def _write_snapshots(self, curs: C, rows: Sequence[SnapshotRow], tips: dict[UUID, str]) -> None:
        """Each membership's snapshot, with its chain tip (the hash of its latest event)."""
        if rows:
            values = [
                (self.originator(row.membership_id), row.version, row.text, tips[row.membership_id])
                for row in rows
            ]
            self._insert_rows(curs, "ledger_heads", SNAPSHOT_COLUMNS, values, SNAPSHOT_UPSERT)

    # --- personal data -------------------------------------------------------------------

    @property
    def vault(self) -> IdentifierVault:
        return IdentifierVault(self)

    def seal(self, items: Sequence[tuple[int, int, dict[str, str]]]) -> Sealed:
        return self.vault.seal(items)

    def unseal(self, org: int, customer: int, sealed: str | None) -> dict[str, str] | None:
        return self.vault.unseal(org, customer, sealed)

    def forget(self, org: int, customer: int) -> bool:
        return self.vault.forget(org, customer)
