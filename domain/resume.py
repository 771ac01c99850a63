"""The resume stage: each membership a batch touches, picked up where it stands.

A membership whose notifications in the batch all occurred no earlier than its head's latest
is picked up from its head, without its events (in whatever order they came: they are folded
from the head's state); any other is loaded and folded from its events (a notification older
than the head needs the whole history); one never seen before is new.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.fold import Standing
from domain.heads import decode_head
from domain.membership import fold, membership_id
from domain.notifications import Notification
from domain.ports import LedgerStore

Decode = Callable[[StoredEvent], Any]


def resume(
    store: LedgerStore,
    decode: Decode,
    notifications: Sequence[Notification],
    *,
    use_heads: bool,
) -> tuple[dict[UUID, Standing], dict[UUID, str]]:
    """Where each membership of ``notifications`` stands, and the chain hash of those picked
    up from their heads. ``decode`` turns a stored event into the library's event object."""
    keys: dict[UUID, tuple[int, int, int]] = {}
    earliest: dict[UUID, datetime] = {}
    for notification in notifications:
        aggregate_id = membership_id(*notification.key)
        at = notification.occurred_at
        keys[aggregate_id] = notification.key
        earliest[aggregate_id] = min(earliest.get(aggregate_id, at), at)
    standings: dict[UUID, Standing] = {}
    hashes: dict[UUID, str] = {}
    stored_heads = store.select_heads(list(keys)) if use_heads else {}
    for aggregate_id, (version, text, chain_hash) in stored_heads.items():
        head = decode_head(aggregate_id, version, text)
        if head is not None and earliest[aggregate_id] >= head.latest_occurrence:
            standings[aggregate_id] = Standing.from_head(head, keys[aggregate_id])
            hashes[aggregate_id] = chain_hash
    streams = store.select_streams([k for k in keys if k not in standings])
    for aggregate_id, key in keys.items():
        if aggregate_id not in standings:
            events = [decode(stored) for _, stored in streams.get(aggregate_id, ())]
            standings[aggregate_id] = _from_history(aggregate_id, key, events)
    return standings, hashes


def _from_history(aggregate_id: UUID, key: tuple[int, int, int], events: list[Any]) -> Standing:
    standing = Standing.new(aggregate_id, key)
    if events:
        standing.version = standing.stored_version = max(e.originator_version for e in events)
        standing.state = fold(key, events)[0]
        standing.latest_occurrence = max(event.occurred_at for event in events)
        standing.events = events
    return standing
