"""The resume stage: each membership a batch touches, picked up where it stands.

A membership whose notifications in the batch all occurred no earlier than its snapshot's
latest is picked up from its snapshot, without its events (in whatever order they came: they
are folded from the snapshot's state); any other is loaded and folded from its events (a
notification older than the snapshot needs the whole history); one never seen before is new.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.fold import Standing
from domain.keys import MembershipKey, membership_id
from domain.notifications import Notification
from domain.ports import LedgerStore
from domain.rules import fold_state
from domain.snapshots import decode_snapshot

Decode = Callable[[StoredEvent], Any]


def resume(
    store: LedgerStore,
    decode: Decode,
    notifications: Sequence[Notification],
    *,
    use_snapshots: bool,
) -> tuple[dict[UUID, Standing], dict[UUID, str]]:
    """Where each membership of ``notifications`` stands, and the chain tip (last hash) of
    those picked up from their snapshots. ``decode`` turns a stored event into the library's
    event object."""
    keys: dict[UUID, MembershipKey] = {}
    earliest: dict[UUID, datetime] = {}
    for notification in notifications:
        aggregate_id = membership_id(notification.key)
        at = notification.occurred_at
        keys[aggregate_id] = notification.key
        earliest[aggregate_id] = min(earliest.get(aggregate_id, at), at)
    standings: dict[UUID, Standing] = {}
    tips: dict[UUID, str] = {}
    stored = store.select_snapshots(list(keys)) if use_snapshots else {}
    for aggregate_id, (version, text, chain_tip) in stored.items():
        snapshot = decode_snapshot(aggregate_id, version, text)
        if snapshot is not None and earliest[aggregate_id] >= snapshot.latest_occurrence:
            standings[aggregate_id] = Standing.from_snapshot(snapshot, keys[aggregate_id])
            tips[aggregate_id] = chain_tip
    streams = store.select_streams([k for k in keys if k not in standings])
    for aggregate_id, key in keys.items():
        if aggregate_id not in standings:
            events = [decode(stored) for _, stored in streams.get(aggregate_id, ())]
            standings[aggregate_id] = _from_history(aggregate_id, key, events)
    return standings, tips


def _from_history(aggregate_id: UUID, key: MembershipKey, events: list[Any]) -> Standing:
    standing = Standing.new(aggregate_id, key)
    if events:
        standing.version = standing.stored_version = max(e.originator_version for e in events)
        standing.state = fold_state(key, events)
        standing.latest_occurrence = max(event.occurred_at for event in events)
        standing.events = events
    return standing
