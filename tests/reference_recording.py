"""The reference write path: aggregates and the library's mapper, as the ledger recorded
before the write pipeline. The tests' oracle for `domain.batch` (same rows, same bytes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast
from uuid import UUID

from domain.classify import classify_batch
from domain.errors import InvalidNotificationError
from domain.integrity import GENESIS
from domain.keys import MembershipKey
from domain.ledger import Ledger, parse_all
from domain.membership import PartnerMembership, membership_id
from domain.notifications import Notification
from domain.rows import InboxRow, Outcome, QuarantineRow, SnapshotRow, quarantine_id
from domain.snapshots import decode_snapshot, encode_snapshot


def record_with_aggregates(
    ledger: Ledger, payloads: Sequence[bytes], *, received_at_us: int
) -> list[Outcome]:
    """One batch as the aggregate path records it: load or resume each membership, command
    it, and `Application.save` its pending events with the ledger's rows."""
    parsed = parse_all(payloads)
    store = ledger.store
    decisions = classify_batch(store, parsed)
    accepted = [item for item in decisions if isinstance(item, Notification)]
    memberships, hashes = _load_all(ledger, accepted)
    sealed = store.seal(
        [(n.org_id, n.customer_id, n.identifiers.model_dump(exclude_none=True)) for n in accepted]
    )
    by_notification = dict(zip(map(id, accepted), sealed.identifiers, strict=True))
    outcomes: list[Outcome] = []
    pending: list[tuple[PartnerMembership, int]] = []
    quarantine: list[QuarantineRow] = []
    for raw, item in zip(payloads, decisions, strict=True):
        if isinstance(item, InvalidNotificationError):
            row = QuarantineRow(quarantine_id(raw), raw, item.reason, item.detail, received_at_us)
            quarantine.append(row)
            outcomes.append(Outcome("quarantined", None, item.reason, item.detail, row.id))
        elif item is None:
            outcomes.append(Outcome("duplicate"))
        else:
            membership = memberships[membership_id(item.key)]
            membership.record(item, sealed_identifiers=by_notification[id(item)])
            pending.append((membership, membership.version))
            outcomes.append(Outcome("recorded"))
    changed = [m for m in memberships.values() if m.pending_count]
    hashes |= store.chain_tips(
        [(m.id, m.version - m.pending_count) for m in changed if m.id not in hashes]
    )
    inbox = [_inbox_row(m, v, hashes.get(m.id, GENESIS)) for m, v in pending]
    snapshots = [SnapshotRow(m.id, m.version, encode_snapshot(m.snapshot)) for m in changed]
    recordings = ledger.save(
        *memberships.values(),
        inbox=inbox,
        snapshots=snapshots,
        keys=sealed.new_keys,
        quarantine=quarantine,
        resolutions=[],
    )
    positions = {
        (r.notification.originator_id, r.notification.originator_version): r.notification.id
        for r in recordings
    }
    recorded = iter(pending)
    return [
        Outcome("recorded", position=positions[_version_key(*next(recorded))])
        if outcome.status == "recorded"
        else outcome
        for outcome in outcomes
    ]


def _load_all(
    ledger: Ledger, notifications: Sequence[Notification]
) -> tuple[dict[UUID, PartnerMembership], dict[UUID, str]]:
    keys: dict[UUID, MembershipKey] = {}
    first: dict[UUID, datetime] = {}
    latest: dict[UUID, datetime] = {}
    in_order: dict[UUID, bool] = {}
    for notification in notifications:
        aggregate_id = membership_id(notification.key)
        at = notification.occurred_at
        keys[aggregate_id] = notification.key
        first.setdefault(aggregate_id, at)
        in_order[aggregate_id] = in_order.get(aggregate_id, True) and at >= latest.get(
            aggregate_id, at
        )
        latest[aggregate_id] = max(latest.get(aggregate_id, at), at)
    memberships: dict[UUID, PartnerMembership] = {}
    hashes: dict[UUID, str] = {}
    stored = ledger.store.select_snapshots(list(keys))
    for aggregate_id, (version, text, chain_tip) in stored.items():
        snapshot = decode_snapshot(aggregate_id, version, text)
        if (
            snapshot
            and in_order[aggregate_id]
            and first[aggregate_id] >= snapshot.latest_occurrence
        ):
            memberships[aggregate_id] = PartnerMembership.resume(snapshot)
            hashes[aggregate_id] = chain_tip
    streams = ledger.store.select_streams([k for k in keys if k not in memberships])
    for aggregate_id, key in keys.items():
        if aggregate_id in memberships:
            continue
        membership: PartnerMembership | None = None
        for _, stored in streams.get(aggregate_id, ()):
            event = cast(PartnerMembership.Event, ledger.mapper.to_domain_event(stored))
            membership = event.mutate(membership)
        memberships[aggregate_id] = membership or PartnerMembership.new(MembershipKey(*key))
    return memberships, hashes


def _inbox_row(membership: PartnerMembership, version: int, previous_hash: str) -> InboxRow:
    event = membership.event(version)
    return InboxRow(
        membership_id=membership.id,
        version=version,
        org_id=event.org_id,
        customer_id=event.customer_id,
        partner_program_id=event.partner_program_id,
        previous_hash=previous_hash,
        fingerprint=event.fingerprint,
        event_id=event.source.get("event_id"),
        occurred_at_ms=int(event.occurred_at.timestamp() * 1000),
        recorded_at_us=int(event.timestamp.timestamp() * 1_000_000),
    )


def _version_key(membership: PartnerMembership, version: int) -> tuple[UUID, int]:
    return (membership.id, version)
