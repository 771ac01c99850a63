"""Reading the views. The CLI and the HTTP service call these; neither writes SQL of its own.

Every query reads the stable SQL views (``view_memberships``, ``view_expiry``), never a
generation table, so a blue/green switch is invisible to readers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from domain.ledger import EXPORT_FIELDS
from projections.store import ViewStore, reader_name
from projections.views import ACTIVITY, EXPIRY, EXPIRY_FIELDS, MEMBERSHIPS, View

PAGE = 5000


class Queries:
    def __init__(self, store: ViewStore) -> None:
        self.store = store

    def membership(
        self, org_id: int, customer_id: int, partner_program_id: int
    ) -> dict[str, Any] | None:
        rows = self.store.query(
            f"SELECT {', '.join(EXPORT_FIELDS)} FROM {reader_name(MEMBERSHIPS)} "
            "WHERE org_id = %s AND customer_id = %s AND partner_program_id = %s",
            (org_id, customer_id, partner_program_id),
        )
        return _membership(rows[0]) if rows else None

    def memberships(self) -> Iterator[dict[str, Any]]:
        """Every membership, sorted by (org, customer, partner program), streamed in pages."""
        for row in self._pages(MEMBERSHIPS, EXPORT_FIELDS):
            yield _membership(row)

    def expiry(self) -> Iterator[dict[str, Any]]:
        """Every expiry row, sorted by (date, org, customer, partner program, kind)."""
        yield from self._pages(EXPIRY, EXPIRY_FIELDS)

    def expiring(
        self,
        *,
        org_id: int | None = None,
        partner_program_id: int | None = None,
        kind: str | None = None,
        start: date | None = None,
        end: date | None = None,
        limit: int = 100,
        after: tuple[Any, ...] | None = None,
    ) -> list[dict[str, Any]]:
        """Expiry rows in [start, end], ordered by date then key; ``after`` is the sort key
        of the last row of the previous page (cursor pagination)."""
        where, params = _expiring_where(org_id, partner_program_id, kind, start, end, after)
        return self.store.query(
            f"SELECT {', '.join(EXPIRY_FIELDS)} FROM {reader_name(EXPIRY)} {where}"
            f"ORDER BY {', '.join(EXPIRY.order_by)} LIMIT %s",
            (*params, limit),
        )

    def count_expiring(
        self,
        *,
        org_id: int | None = None,
        partner_program_id: int | None = None,
        kind: str | None = None,
        start: date | None = None,
        end: date | None = None,
        after: tuple[Any, ...] | None = None,
    ) -> int:
        """How many rows ``expiring`` would list without a limit."""
        where, params = _expiring_where(org_id, partner_program_id, kind, start, end, after)
        (row,) = self.store.query(
            f"SELECT COUNT(*) AS n FROM {reader_name(EXPIRY)} {where}", tuple(params)
        )
        return int(row["n"])

    def tiers(
        self, *, org_id: int | None = None, partner_program_id: int | None = None
    ) -> list[dict[str, Any]]:
        """LINKED memberships per (org, partner program, tier)."""
        conditions = ["status = 'LINKED'"]
        params: list[Any] = []
        if org_id is not None:
            conditions.append("org_id = %s")
            params.append(org_id)
        if partner_program_id is not None:
            conditions.append("partner_program_id = %s")
            params.append(partner_program_id)
        return self.store.query(
            "SELECT org_id, partner_program_id, tier_number, COUNT(*) AS memberships "
            f"FROM {reader_name(MEMBERSHIPS)} WHERE {' AND '.join(conditions)} "
            "GROUP BY org_id, partner_program_id, tier_number "
            # Memberships without a tier last, the same on both databases.
            "ORDER BY org_id, partner_program_id, tier_number IS NULL, tier_number",
            params,
        )

    # --- the dashboard's overview (and its API, /overview and /activity) ----------------

    def customer_memberships(self, org_id: int, customer_id: int) -> list[dict[str, Any]]:
        """Every membership of one customer, by partner program."""
        rows = self.store.query(
            f"SELECT {', '.join(EXPORT_FIELDS)} FROM {reader_name(MEMBERSHIPS)} "
            "WHERE org_id = %s AND customer_id = %s ORDER BY partner_program_id",
            (org_id, customer_id),
        )
        return [_membership(row) for row in rows]

    def statuses(self) -> list[dict[str, Any]]:
        """Memberships per status."""
        rows = self.store.query(
            f"SELECT status, COUNT(*) AS memberships FROM {reader_name(MEMBERSHIPS)} "
            "GROUP BY status ORDER BY status"
        )
        return [{"status": r["status"], "memberships": int(r["memberships"])} for r in rows]

    def program_names(self) -> dict[tuple[int, int], str | None]:
        """(org, partner program) -> the program's name (the latest any membership holds)."""
        rows = self.store.query(
            "SELECT org_id, partner_program_id, MAX(partner_program_name) AS name "
            f"FROM {reader_name(MEMBERSHIPS)} GROUP BY org_id, partner_program_id"
        )
        return {(r["org_id"], r["partner_program_id"]): r["name"] for r in rows}

    def activity(
        self,
        *,
        since_month: str,
        org_id: int | None = None,
        partner_program_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Linked and Delinked events per month (``YYYY-MM``, UTC, of occurrence) from
        ``since_month`` on: rows of ``month``, ``kind`` (link, delink), ``events``."""
        conditions = ["month >= %s"]
        params: list[Any] = [since_month]
        for column, value in (("org_id", org_id), ("partner_program_id", partner_program_id)):
            if value is not None:
                conditions.append(f"{column} = %s")
                params.append(value)
        rows = self.store.query(
            f"SELECT month, kind, SUM(events) AS events FROM {reader_name(ACTIVITY)} "
            f"WHERE {' AND '.join(conditions)} GROUP BY month, kind ORDER BY month, kind",
            params,
        )
        return [{"month": r["month"], "kind": r["kind"], "events": int(r["events"])} for r in rows]

    def expiring_counts(self, *, today: date, within_days: Sequence[int]) -> list[dict[str, Any]]:
        """Expiry rows per kind dated from ``today`` to ``today + N`` days, for each N."""
        ends = [date.fromordinal(today.toordinal() + days).isoformat() for days in within_days]
        sums = ", ".join(
            f"SUM(CASE WHEN date <= %s THEN 1 ELSE 0 END) AS within_{days}" for days in within_days
        )
        rows = self.store.query(
            f"SELECT kind, {sums} FROM {reader_name(EXPIRY)} "
            "WHERE date >= %s AND date <= %s GROUP BY kind ORDER BY kind",
            (*ends, today.isoformat(), max(ends)),
        )
        return [
            {"kind": r["kind"]} | {f"within_{d}": int(r[f"within_{d}"] or 0) for d in within_days}
            for r in rows
        ]

    def _pages(self, view: View, fields: tuple[str, ...]) -> Iterator[dict[str, Any]]:
        order = ", ".join(view.order_by)
        after: tuple[Any, ...] | None = None
        while True:
            condition = (
                "" if after is None else (f"WHERE ({order}) > ({', '.join(['%s'] * len(after))}) ")
            )
            rows = self.store.query(
                f"SELECT {', '.join(fields)} FROM {reader_name(view)} {condition}"
                f"ORDER BY {order} LIMIT %s",
                (*(after or ()), PAGE),
            )
            yield from rows
            if len(rows) < PAGE:
                return
            after = tuple(rows[-1][name] for name in view.order_by)


def _membership(row: dict[str, Any]) -> dict[str, Any]:
    row["link_inferred"] = bool(row["link_inferred"])
    return row


def _expiring_where(
    org_id: int | None,
    partner_program_id: int | None,
    kind: str | None,
    start: date | None,
    end: date | None,
    after: tuple[Any, ...] | None,
) -> tuple[str, list[Any]]:
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("org_id", org_id),
        ("partner_program_id", partner_program_id),
        ("kind", kind),
    ):
        if value is not None:
            conditions.append(f"{column} = %s")
            params.append(value)
    if start is not None:
        conditions.append("date >= %s")
        params.append(start.isoformat())
    if end is not None:
        conditions.append("date <= %s")
        params.append(end.isoformat())
    if after is not None:
        conditions.append(f"({', '.join(EXPIRY.order_by)}) > ({', '.join(['%s'] * len(after))})")
        params.extend(after)
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    return where, params
