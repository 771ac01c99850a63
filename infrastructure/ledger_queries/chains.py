"""The hash chain's reads: stored events with their inbox rows, orphans, snapshots that moved
apart, the log of chain hashes, and the digest checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from infrastructure.ledger_queries.base import D, QueryBase
from infrastructure.retrying import now_us


class ChainQueries(QueryBase[D]):
    """Reads (and the checkpoints' one write) of the chain: inbox hashes, snapshots, digests."""

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
                    (position, events, digest, now_us()),
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
