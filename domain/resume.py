"""The resume stage: each membership a batch touches, picked up where it stands.

A membership whose notifications in the batch all occurred no earlier than its head's latest
(and in order) is picked up from its head, without its events; any other is loaded and folded
from its events (late notifications need the whole history); one never seen before is new.
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
    first: dict[UUID, datetime] = {}
    latest: dict[UUID, datetime] = {}
    in_order: dict[UUID, bool] = {}
    for notification in notifications:
        aggregate_id = membership_id(*notification.key)
        at = notification.occurred_at
        keys[aggregate_id] = notification.key
        first.setdefault(aggregate_id, at)
        in_order[aggregate_id] = in_order.get(aggregate_id, True) and at >= latest.get(
            aggregate_id, at
        )
        latest[aggregate_id] = max(latest.get(aggregate_id, at), at)
    standings: dict[UUID, Standing] = {}
    hashes: dict[UUID, str] = {}
    stored_heads = store.select_heads(list(keys)) if use_heads else {}
    for aggregate_id, (version, text, chain_hash) in stored_heads.items():
        head = decode_head(aggregate_id, version, text)
        if (
            head is None
            or not in_order[aggregate_id]
            or first[aggregate_id] < head.latest_occurrence
        ):
            continue
        standings[aggregate_id] = Standing(
            aggregate_id,
            keys[aggregate_id],
            head.version,
            head.state,
            head.latest_occurrence,
            None,
            head.version,
        )
        hashes[aggregate_id] = chain_hash
    streams = store.select_streams([k for k in keys if k not in standings])
    for aggregate_id, key in keys.items():
        if aggregate_id not in standings:
            events = [decode(stored) for _, stored in streams.get(aggregate_id, ())]
            standings[aggregate_id] = _from_history(aggregate_id, key, events)
    return standings, hashes


def _from_history(aggregate_id: UUID, key: tuple[int, int, int], events: list[Any]) -> Standing:
    if not events:
        return Standing.new(aggregate_id, key)
    version = max(event.originator_version for event in events)
    return Standing(
        aggregate_id,
        key,
        version,
        fold(key, events)[0],
        max(event.occurred_at for event in events),
        events,
        version,
    )
