"""The quarantine's reads, its one small write (drops), and the counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infrastructure.ledger_queries.base import D, QueryBase, marks


class QuarantineQueries(QueryBase[D]):
    """Entries of ``ledger_quarantine``: open or all, by id prefix, their bytes."""

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
