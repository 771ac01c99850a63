"""What only the tests read: the reference reads the ledger itself has no use for.

Each is checked against the ledger's own reads (the views, the projections' log reader, the
pipeline), so each is written the plainest way: the library's repository, a filter in Python.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.ledger import Ledger
from domain.membership import MembershipState
from domain.ports import LedgerStore


def membership_states(ledger: Ledger) -> list[MembershipState]:
    """Every membership's state, each folded by the library's repository from its events,
    sorted by (org, customer, partner program)."""
    states = [ledger.repository.get(mid).state for mid in ledger.store.membership_keys()]
    return sorted(states, key=lambda state: state.key)


def streams_up_to(
    store: LedgerStore, membership_ids: Sequence[UUID], up_to: int
) -> dict[UUID, list[tuple[int, StoredEvent]]]:
    """The stored events (with positions) at or before ``up_to`` of these memberships, in
    version order; a membership with none is left out."""
    streams = {
        membership_id: [(position, event) for position, event in stream if position <= up_to]
        for membership_id, stream in store.select_streams(membership_ids).items()
    }
    return {membership_id: stream for membership_id, stream in streams.items() if stream}


def now_us() -> int:
    """The time now in microseconds, for rows built by hand (the ledger reads its clock)."""
    return time.time_ns() // 1000
