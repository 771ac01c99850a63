"""The fold stage: each notification folded once into its membership, on plain values.

No aggregate objects, no event objects, no per-step history: a `Standing` holds where a
membership stands (version, state, latest occurrence) and each in-order notification is one
`apply_event` on that state, as the aggregate's own fold does for one event. A late
notification (one that occurred before the membership's latest) is folded with the reference
`fold_steps` over the events since its snapshot (or over its whole history, which
`domain.resume` loads only for a notification older than the snapshot), so anomalies and state
are the aggregate's, whatever the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

from domain.event_fields import event_fields
from domain.keys import MembershipKey
from domain.notifications import Notification
from domain.rules import Fact, apply_event, fold_steps
from domain.state import MembershipState, Snapshot

NEVER: Final = datetime.min.replace(tzinfo=UTC)


@dataclass
class Standing:
    """A membership while a batch is being recorded: where it stands after the events
    stored before the batch and those recorded in it so far.

    ``base`` is the state after the events that were not loaded (all of them, when picked up
    from its snapshot; none, when its history was loaded), all of which occurred no later than
    ``floor``; ``events`` are the ones since (loaded, and recorded in this batch), in arrival
    order. A notification that occurred at or after ``floor`` can be folded from ``base``."""

    membership_id: UUID
    key: MembershipKey
    version: int
    state: MembershipState
    latest_occurrence: datetime
    base: MembershipState
    floor: datetime
    events: list[Any]
    stored_version: int  # the version before this batch

    @classmethod
    def new(cls, membership_id: UUID, key: MembershipKey) -> Standing:
        """A membership the ledger has not seen yet."""
        empty = MembershipState(*key)
        return cls(membership_id, key, 0, empty, NEVER, empty, NEVER, [], 0)

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, key: MembershipKey) -> Standing:
        """A membership picked up from its snapshot, without its events."""
        latest = snapshot.latest_occurrence
        return cls(
            snapshot.membership_id,
            key,
            snapshot.version,
            snapshot.state,
            latest,
            snapshot.state,
            latest,
            [],
            snapshot.version,
        )

    @property
    def snapshot(self) -> Snapshot:
        """Where it stands now, as the next batch resumes from it."""
        return Snapshot(self.membership_id, self.version, self.state, self.latest_occurrence)

    @property
    def changed(self) -> bool:
        return self.version > self.stored_version


def fold_next(
    standing: Standing,
    notification: Notification,
    *,
    timestamp: datetime,
    identifiers: str | None,
) -> dict[str, Any]:
    """Fold ``notification`` into ``standing`` as its next event; returns that event's
    values (every field of the stored event but its originator and version)."""
    fields = event_fields(notification)
    version = standing.version + 1
    fact = Fact.of(notification.kind, version, fields)
    occurred_at: datetime = fields["occurred_at"]
    if occurred_at >= standing.latest_occurrence:
        after, found, _ = apply_event(standing.state, fact)
    else:
        if occurred_at < standing.floor:
            raise LookupError("an event this late needs the membership's whole history")
        events: list[Any] = [*standing.events, fact]
        after, steps = fold_steps(standing.key, events, start=standing.base)
        found = list(next(step.anomalies for step in steps if step.event is events[-1]))
    standing.events.append(fact)
    standing.version = version
    standing.state = after
    standing.latest_occurrence = max(standing.latest_occurrence, occurred_at)
    anomalies = list(dict.fromkeys([*notification.anomalies, *found]))
    return fields | {"timestamp": timestamp, "identifiers": identifiers, "anomalies": anomalies}
