"""What the ledger knows about one membership: its state, and the snapshot kept of it."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Final, NamedTuple
from uuid import UUID

from domain.keys import MembershipKey


class Status(StrEnum):
    LINKED = "LINKED"
    DELINKED = "DELINKED"


PERIOD_FIELDS: Final = (
    "tier_number",
    "tier_expiry_date",
    "tier_expiry_at",
    "membership_number",
    "membership_expiry_date",
    "membership_expiry_at",
    "scheduled_expiry_date",
    "last_update_type",
    "last_reminder_at",
)


class MembershipState(NamedTuple):
    """What the ledger knows about one membership: the fold of its events.

    Immutable; a named tuple rather than a dataclass because the fold copies it for every
    event, and ``_replace`` is an order of magnitude cheaper than ``dataclasses.replace``."""

    org_id: int
    customer_id: int
    partner_program_id: int
    loyalty_program_id: int | None = None
    partner_program_name: str | None = None
    partner_program_type: str | None = None
    status: Status | None = None
    link_inferred: bool = False
    linked_at: datetime | None = None
    delinked_at: datetime | None = None
    tier_number: int | None = None
    tier_expiry_date: date | None = None
    tier_expiry_at: datetime | None = None
    membership_number: str | None = None
    membership_expiry_date: date | None = None
    membership_expiry_at: datetime | None = None
    scheduled_expiry_date: date | None = None
    last_update_type: str | None = None
    last_reminder_at: datetime | None = None
    event_count: int = 0

    @property
    def key(self) -> MembershipKey:
        return MembershipKey(self.org_id, self.customer_id, self.partner_program_id)


class Snapshot(NamedTuple):
    """Where a membership stands after its latest event: its version, state and latest
    occurrence. Stored beside the events (table ``ledger_heads``, a stored name), so that
    recording one more in-order event does not need to read and fold the whole history.
    Not the library's snapshots (``eventsourcing.domain.Snapshot``), which this ledger does
    not use."""

    membership_id: UUID
    version: int
    state: MembershipState
    latest_occurrence: datetime
