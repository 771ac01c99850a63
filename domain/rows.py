"""The rows a recorded batch writes beside its events, and what became of each payload."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from uuid import UUID

if TYPE_CHECKING:
    from domain.membership import Fact, MembershipState


OutcomeStatus = Literal["recorded", "duplicate", "quarantined"]


@dataclass(frozen=True)
class Outcome:
    """What became of one payload."""

    status: OutcomeStatus
    position: int | None = None
    reason: str | None = None
    detail: str | None = None
    quarantine_id: str | None = None


@dataclass(frozen=True)
class InboxRow:
    """One recorded notification; ``previous_hash`` is the membership's chain tip (its last
    event's hash) before this batch (the recorder chains several events of one batch itself)."""

    membership_id: UUID
    version: int
    org_id: int
    customer_id: int
    partner_program_id: int
    previous_hash: str
    fingerprint: str
    event_id: str | None
    occurred_at_ms: int
    recorded_at_us: int


@dataclass(frozen=True)
class SnapshotRow:
    """A membership's snapshot after this batch (see `domain.membership.Snapshot`), encoded;
    the recorder adds the chain tip (the hash of its latest event). Stored in ``ledger_heads``
    (a stored name)."""

    membership_id: UUID
    version: int
    text: str


@dataclass(frozen=True)
class FoldedRow:
    """A membership as the batch leaves it, for the views the recorder keeps current in the
    same transaction (`infrastructure.views.inline`): its state after the batch, and the
    facts the batch recorded for it, in recording order (a view that counts events adds
    them)."""

    membership_id: UUID
    state: MembershipState
    recorded: tuple[Fact, ...]


@dataclass(frozen=True)
class QuarantineRow:
    id: str
    raw: bytes
    reason: str
    detail: str
    received_at_us: int
    is_receipt: bool = True
    source: str | None = None  # where it came from (a file, the webhook); the first kept


@dataclass(frozen=True)
class Resolution:
    id: str
    resolution: Literal["recorded", "duplicate"]
    resolved_at_us: int


@dataclass(frozen=True)
class CustomerKeyRow:
    """A customer's new sealing key, written in the same transaction as the events it seals
    (a concurrent writer that created the same customer's key first makes it a conflict)."""

    org_id: int
    customer_id: int
    key: bytes
    created_at_us: int


@dataclass(frozen=True)
class Sealed:
    """Identifiers sealed for a batch (one per item, None when nothing is sealed) and the
    keys created for them."""

    identifiers: list[str | None]
    new_keys: list[CustomerKeyRow]


def quarantine_id(raw: bytes) -> str:
    """Quarantine entries are addressed by content: the same bytes are one entry."""
    return hashlib.sha256(raw).hexdigest()[:16]
