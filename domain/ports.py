"""What the ledger needs from its store beyond the library's event storage (the recorder
implements it: `infrastructure.recorders`)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.audit import AuditStore
from domain.rows import Sealed


class LedgerStore(AuditStore, Protocol):
    """What the ledger needs from its recorder beyond the library's event storage."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **rows: Any
    ) -> Sequence[int] | None:
        """The write stage: the events and ``rows`` (inbox, snapshots, keys, quarantine,
        resolutions) in one transaction; the events' positions, in order. Given ``folded``
        (`domain.rows.FoldedRow`), it also updates the views that stand at the log's head in
        that transaction; a view it cannot update is left to catch up."""
        ...

    def find_recorded(
        self, event_ids: Sequence[str], fingerprints: Sequence[str]
    ) -> tuple[dict[str, str], set[str]]: ...

    def select_streams(
        self, membership_ids: Sequence[UUID]
    ) -> dict[UUID, list[tuple[int, StoredEvent]]]:
        """The stored events (with positions) of these memberships, in version order."""
        ...

    def chain_tips(self, versions: Sequence[tuple[UUID, int]]) -> dict[UUID, str]:
        """Each membership's chain tip: the hash of its event at the given version."""
        ...

    def select_snapshots(self, membership_ids: Sequence[UUID]) -> dict[UUID, tuple[int, str, str]]:
        """Each membership's stored snapshot: (version, encoded snapshot, chain tip)."""
        ...

    def writing(self) -> AbstractContextManager[None]: ...

    def seal(self, items: Sequence[tuple[int, int, dict[str, str]]]) -> Sealed: ...

    def unseal(self, org: int, customer: int, sealed: str | None) -> dict[str, str] | None: ...

    def forget(self, org: int, customer: int) -> bool: ...

    def positions(self, membership_id: UUID) -> dict[int, int]: ...

    def membership_keys(
        self,
        *,
        org_id: int | None = None,
        partner_program_id: int | None = None,
        recorded_from_us: int | None = None,
        recorded_to_us: int | None = None,
        occurred_to_ms: int | None = None,
    ) -> list[UUID]: ...

    def count_memberships(
        self,
        *,
        org_id: int | None = None,
        partner_program_id: int | None = None,
        recorded_from_us: int | None = None,
        recorded_to_us: int | None = None,
    ) -> int:
        """How many memberships `membership_keys` would return for these bounds."""
        ...

    def quarantined(self, *, include_resolved: bool = False) -> list[dict[str, Any]]: ...

    def quarantine_entry(self, id_prefix: str) -> list[dict[str, Any]]: ...

    def drop_quarantined(self, ids: Sequence[str], *, why: str, at_us: int) -> list[str]: ...

    def quarantine_payloads(self, ids: Sequence[str]) -> dict[str, bytes]: ...

    def counts(self) -> dict[str, int]: ...
