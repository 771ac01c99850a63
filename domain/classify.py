"""The classify stage: duplicates and eventId collisions of a batch, from one query."""

from __future__ import annotations

from collections.abc import Sequence

from domain.errors import InvalidNotificationError, Reason
from domain.notifications import Notification
from domain.ports import LedgerStore

Decision = Notification | InvalidNotificationError | None
"""The notification to record, a reason to quarantine it, or None for a duplicate."""


def classify_batch(
    store: LedgerStore, parsed: Sequence[Notification | InvalidNotificationError]
) -> list[Decision]:
    """Each parse result decided against what ``store`` holds, asked in one query for the
    batch's eventIds and fingerprints (`classify`)."""
    valid = [item for item in parsed if isinstance(item, Notification)]
    known_ids, known_fingerprints = store.find_recorded(
        [n.event_id for n in valid if n.event_id], [n.fingerprint for n in valid]
    )
    return classify(parsed, known_ids, known_fingerprints)


def classify(
    parsed: Sequence[Notification | InvalidNotificationError],
    known_ids: dict[str, str],
    known_fingerprints: set[str],
) -> list[Decision]:
    """Each parse result decided against what the store already holds (``known_ids``:
    eventId -> fingerprint; ``known_fingerprints``) and against the batch's earlier
    payloads: the known sets grow as the batch is read."""
    return [
        _decide(item, known_ids, known_fingerprints) if isinstance(item, Notification) else item
        for item in parsed
    ]


def _decide(
    notification: Notification, known_ids: dict[str, str], known_fingerprints: set[str]
) -> Decision:
    fingerprint = notification.fingerprint
    event_id = notification.event_id
    if event_id is not None and event_id in known_ids:
        if known_ids[event_id] == fingerprint:
            return None
        return InvalidNotificationError(
            Reason.ID_COLLISION,
            f"eventId {event_id!r} was already recorded with different business content "
            f"(fingerprint {known_ids[event_id][:12]}, this one {fingerprint[:12]})",
        )
    if fingerprint in known_fingerprints:
        return None
    known_fingerprints.add(fingerprint)
    if event_id is not None:
        known_ids[event_id] = fingerprint
    return notification
