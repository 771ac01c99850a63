"""The fold stage: each notification folded once into its membership, on plain values.

No aggregate objects, no event objects, no per-step history: a `Standing` holds where a
membership stands (version, state, latest occurrence) and each in-order notification is one
`effect` on that state, as the aggregate's own fold does for one event. A late notification
(one that occurred before the membership's latest) is folded with the reference `fold`
over the events since its head (or over its whole history, which `domain.resume` loads only
for a notification older than the head), so anomalies and state are the aggregate's,
whatever the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

from domain.membership import Fact, Head, MembershipState, effect, event_fields, fold
from domain.notifications import Notification

NEVER: Final = datetime.min.replace(tzinfo=UTC)


@dataclass
class Standing:
    """A membership while a batch is being recorded: where it stands after the events
    stored before the batch and those recorded in it so far.

    ``base`` is the state after the events that were not loaded (all of them, when picked up
    from its head; none, when its history was loaded), all of which occurred no later than
    ``floor``; ``events`` are the ones since (loaded, and recorded in this batch), in arrival
    order. A notification that occurred at or after ``floor`` can be folded from ``base``."""

    membership_id: UUID
    key: tuple[int, int, int]
    version: int
    state: MembershipState
    latest_occurrence: datetime
    base: MembershipState
    floor: datetime
    events: list[Any]
    stored_version: int  # the version before this batch

    @classmethod
    def new(cls, membership_id: UUID, key: tuple[int, int, int]) -> Standing:
        """A membership the ledger has not seen yet."""
        empty = MembershipState(*key)
        return cls(membership_id, key, 0, empty, NEVER, empty, NEVER, [], 0)

    @classmethod
    def from_head(cls, head: Head, key: tuple[int, int, int]) -> Standing:
        """A membership picked up from its head, without its events."""
        latest = head.latest_occurrence
        return cls(
            head.membership_id,
            key,
            head.version,
            head.state,
            latest,
            head.state,
            latest,
            [],
            head.version,
        )

    @property
    def changed(self) -> bool:
        return self.version > self.stored_version


def record(
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
    fact = Fact(
        kind=notification.kind, identifiers=identifiers, originator_version=version, **fields
    )
    occurred_at: datetime = fields["occurred_at"]
    if occurred_at >= standing.latest_occurrence:
        after, found, _ = effect(standing.state, fact)
    else:
        if occurred_at < standing.floor:
            raise LookupError("an event this late needs the membership's whole history")
        events: list[Any] = [*standing.events, fact]
        after, steps = fold(standing.key, events, start=standing.base)
        found = list(next(step.anomalies for step in steps if step.event is events[-1]))
    standing.events.append(fact)
    standing.version = version
    standing.state = after
    standing.latest_occurrence = max(standing.latest_occurrence, occurred_at)
    anomalies = list(dict.fromkeys([*notification.anomalies, *found]))
    return fields | {"timestamp": timestamp, "identifiers": identifiers, "anomalies": anomalies}
