"""The read models: what each view's rows are, derived from a membership's folded state.

A view is a pure description: its columns, indexes, schema version, and the rows one
membership contributes. The runner (`projections.runner`) keeps the rows current; the queries
(`infrastructure.views.queries`) read them through a stable SQL view name, so a rebuilt
generation can replace the live one without readers noticing.

Bump ``schema_version`` whenever the rows or columns change: the next ``project`` (or any
query that catches up) rebuilds the view blue/green.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, ClassVar, Protocol
from uuid import UUID

from domain.ledger import EXPORT_FIELDS, jsonable
from domain.membership import MembershipState, Status
from domain.notifications import Kind

KEY = ("org_id", "customer_id", "partner_program_id")


class Occurrence(Protocol):
    """What a view may read of an event: a recorded event, or the write pipeline's `Fact`."""

    @property
    def kind(self) -> Kind: ...

    @property
    def occurred_at(self) -> datetime: ...


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # portable: BIGINT, TEXT, BOOLEAN


@dataclass(frozen=True)
class View:
    """One read model."""

    name: str
    schema_version: int
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...]
    order_by: tuple[str, ...]
    # A view that counts events names its count column: a batch's rows (counting only the
    # batch's events) add to the stored ones instead of replacing the membership's rows.
    tally: str | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def rows(
        self, membership_id: UUID, state: MembershipState, position: int
    ) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def membership_rows(
        self,
        membership_id: UUID,
        state: MembershipState,
        position: int,
        events: Sequence[Occurrence],
    ) -> list[tuple[Any, ...]]:
        """The rows of one membership, given its fold and its events (in recording order).
        Most views need only the fold; a view that counts events overrides this."""
        return self.rows(membership_id, state, position)


_TYPES = {
    "org_id": "BIGINT",
    "customer_id": "BIGINT",
    "partner_program_id": "BIGINT",
    "loyalty_program_id": "BIGINT",
    "link_inferred": "BOOLEAN",
    "tier_number": "BIGINT",
    "event_count": "BIGINT",
}


_EXPORTED = attrgetter(*EXPORT_FIELDS)  # one C call instead of a getattr per field


class MembershipsView(View):
    """One row per membership with the fields of ``export memberships``; ``position`` is the
    notification id of the latest event folded into it."""

    def rows(
        self, membership_id: UUID, state: MembershipState, position: int
    ) -> list[tuple[Any, ...]]:
        values = [jsonable(value) for value in _EXPORTED(state)]
        return [(*values, str(membership_id), position)]


class ExpiryView(View):
    """One row per LINKED membership and expiry kind that has a date."""

    KINDS = (
        ("membership", "membership_expiry_date"),
        ("tier", "tier_expiry_date"),
        ("scheduled", "scheduled_expiry_date"),
    )

    def rows(
        self, membership_id: UUID, state: MembershipState, position: int
    ) -> list[tuple[Any, ...]]:
        if state.status is not Status.LINKED:
            return []
        key = (state.org_id, state.customer_id, state.partner_program_id)
        return [
            (*key, kind, getattr(state, field).isoformat(), str(membership_id))
            for kind, field in self.KINDS
            if getattr(state, field) is not None
        ]


MEMBERSHIPS = MembershipsView(
    name="memberships",
    schema_version=2,  # 2: tier_expiry_at, membership_expiry_at
    columns=(
        *(Column(name, _TYPES.get(name, "TEXT")) for name in EXPORT_FIELDS),
        Column("membership_id", "TEXT"),
        Column("position", "BIGINT"),
    ),
    primary_key=KEY,
    indexes=(
        ("org_id", "partner_program_id", "status", "tier_number"),
        ("membership_id",),
    ),
    order_by=KEY,
)

EXPIRY = ExpiryView(
    name="expiry",
    schema_version=1,
    columns=(
        Column("org_id", "BIGINT"),
        Column("customer_id", "BIGINT"),
        Column("partner_program_id", "BIGINT"),
        Column("kind", "TEXT"),
        Column("date", "TEXT"),
        Column("membership_id", "TEXT"),
    ),
    primary_key=(*KEY, "kind"),
    indexes=(
        ("date", "org_id", "customer_id", "partner_program_id", "kind"),
        ("membership_id",),
    ),
    order_by=("date", *KEY, "kind"),
)


class ActivityView(View):
    """Links and delinks per month: one row per membership, UTC month of occurrence and kind
    (``link``, ``delink``) with how many such events it has. The memberships view keeps only
    the latest link and delink; this one counts every Linked and Delinked event, so the query
    sums a month across memberships (`Queries.activity`)."""

    KINDS: ClassVar[dict[Kind, str]] = {Kind.LINKED: "link", Kind.DELINKED: "delink"}

    def rows(
        self, membership_id: UUID, state: MembershipState, position: int
    ) -> list[tuple[Any, ...]]:
        raise TypeError("the activity view is computed from events: call membership_rows")

    def membership_rows(
        self,
        membership_id: UUID,
        state: MembershipState,
        position: int,
        events: Sequence[Occurrence],
    ) -> list[tuple[Any, ...]]:
        counted = Counter(
            (event.occurred_at.astimezone(UTC).strftime("%Y-%m"), self.KINDS[event.kind])
            for event in events
            if event.kind in self.KINDS
        )
        key = (state.org_id, state.customer_id, state.partner_program_id)
        return [
            (*key, month, kind, number, str(membership_id))
            for (month, kind), number in sorted(counted.items())
        ]


ACTIVITY = ActivityView(
    name="activity",
    schema_version=1,
    columns=(
        Column("org_id", "BIGINT"),
        Column("customer_id", "BIGINT"),
        Column("partner_program_id", "BIGINT"),
        Column("month", "TEXT"),
        Column("kind", "TEXT"),
        Column("events", "BIGINT"),
        Column("membership_id", "TEXT"),
    ),
    primary_key=(*KEY, "month", "kind"),
    indexes=(
        ("month", "kind", "events"),
        ("org_id", "partner_program_id", "month"),
        ("membership_id",),
    ),
    order_by=(*KEY, "month", "kind"),
    tally="events",
)

VIEWS: dict[str, View] = {view.name: view for view in (MEMBERSHIPS, EXPIRY, ACTIVITY)}
EXPIRY_FIELDS = ("org_id", "customer_id", "partner_program_id", "kind", "date")
