"""One batch through the write pipeline: classify, resume, fold, seal, encode, write.

Parsing (decode and normalize) happened before, maybe in other processes; the write is the
recorder's ``insert_events``, which chains each event's hash over its stored bytes and writes
events, inbox, snapshots, new customer keys, quarantine and resolutions in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from eventsourcing.persistence import StoredEvent

from domain.classify import classify_batch
from domain.encode import EventEncoder
from domain.errors import InvalidNotificationError
from domain.fold import Standing, fold_next
from domain.integrity import GENESIS
from domain.keys import membership_id
from domain.notifications import Notification
from domain.ports import LedgerStore
from domain.resume import Decode, resume
from domain.rows import (
    FoldedRow,
    InboxRow,
    Outcome,
    QuarantineRow,
    Resolution,
    SnapshotRow,
    quarantine_id,
)
from domain.snapshots import encode_snapshot

Clock = Callable[[], datetime]
"""The recording time of the next event (UTC)."""

# Outcomes are frozen: one object each for every duplicate, and every recorded event until
# its position is known
_DUPLICATE: Final = Outcome("duplicate")
_RECORDED: Final = Outcome("recorded")


@dataclass(frozen=True)
class Pipeline:
    """The stages' collaborators: the store, how to read its events, how to write them."""

    store: LedgerStore
    decode: Decode
    encoder: EventEncoder
    clock: Clock


def record_batch(
    pipeline: Pipeline,
    payloads: Sequence[bytes],
    parsed: Sequence[Notification | InvalidNotificationError],
    received_at_us: int,
    resolving: Sequence[str] | None,
    *,
    use_snapshots: bool,
    update_views: bool = False,
    sources: Sequence[str | None] | None = None,
) -> list[Outcome]:
    """The batch in one transaction; one outcome per payload, in order. With
    ``update_views``, the recorder is also given each changed membership's folded state, to
    bring the views that stand at the log's head along in the same transaction. ``sources``:
    where each payload came from, kept with the quarantine entries, in the same transaction."""
    store = pipeline.store
    decisions = classify_batch(store, parsed)
    accepted = [item for item in decisions if isinstance(item, Notification)]
    standings, tips = resume(store, pipeline.decode, accepted, use_snapshots=use_snapshots)
    sealed = store.seal(
        [(n.org_id, n.customer_id, n.identifiers.model_dump(exclude_none=True)) for n in accepted]
    )
    identifiers = iter(sealed.identifiers)
    outcomes: list[Outcome] = []
    quarantine: list[QuarantineRow] = []
    events: list[StoredEvent] = []
    inbox: list[tuple[Standing, int, Notification, datetime]] = []
    origins = sources if sources is not None else [None] * len(payloads)
    for raw, item, source in zip(payloads, decisions, origins, strict=True):
        if isinstance(item, InvalidNotificationError):
            receipt = resolving is None
            row = QuarantineRow(
                quarantine_id(raw), raw, item.reason, item.detail, received_at_us, receipt, source
            )
            quarantine.append(row)
            outcomes.append(_quarantined(row))
        elif item is None:
            outcomes.append(_DUPLICATE)
        else:
            standing = standings[membership_id(item.key)]
            timestamp = pipeline.clock()
            values = fold_next(standing, item, timestamp=timestamp, identifiers=next(identifiers))
            events.append(
                pipeline.encoder.encode(item.kind, standing.membership_id, standing.version, values)
            )
            inbox.append((standing, standing.version, item, timestamp))
            outcomes.append(_RECORDED)
    changed = [s for s in standings.values() if s.changed]
    tips |= store.chain_tips(
        [(s.membership_id, s.stored_version) for s in changed if s.membership_id not in tips]
    )
    views = {"folded": [_folded(s) for s in changed]} if update_views else {}
    positions = store.insert_events(
        events,
        **views,
        inbox=[
            _inbox_row(
                standing, version, item, timestamp, tips.get(standing.membership_id, GENESIS)
            )
            for standing, version, item, timestamp in inbox
        ],
        snapshots=[
            SnapshotRow(s.membership_id, s.version, encode_snapshot(s.snapshot)) for s in changed
        ],
        keys=sealed.new_keys,
        quarantine=quarantine,
        resolutions=_resolutions(resolving, outcomes, received_at_us),
    )
    return _with_positions(outcomes, positions)


def _resolutions(
    resolving: Sequence[str] | None, outcomes: list[Outcome], at_us: int
) -> list[Resolution]:
    """The quarantine entries being replayed that are now recorded (or duplicates)."""
    return [
        Resolution(qid, outcome.status, at_us)
        for qid, outcome in zip(resolving or (), outcomes, strict=False)
        if outcome.status != "quarantined"
    ]


def _quarantined(row: QuarantineRow) -> Outcome:
    return Outcome("quarantined", reason=row.reason, detail=row.detail, quarantine_id=row.id)


def _with_positions(outcomes: list[Outcome], positions: Sequence[int] | None) -> list[Outcome]:
    """Each recorded outcome with its event's position (None where the store gives none)."""
    at = iter(positions or ())
    return [
        Outcome("recorded", position=next(at, None)) if outcome.status == "recorded" else outcome
        for outcome in outcomes
    ]


def _folded(standing: Standing) -> FoldedRow:
    """A changed membership's state and the facts this batch recorded for it (the last of
    its events: those loaded from the store come first)."""
    recorded = standing.version - standing.stored_version
    return FoldedRow(standing.membership_id, standing.state, tuple(standing.events[-recorded:]))


def _inbox_row(
    standing: Standing,
    version: int,
    notification: Notification,
    timestamp: datetime,
    previous_hash: str,
) -> InboxRow:
    """The inbox row of the event at ``version``, made once the batch is folded (when the
    membership's chain tip before the batch, its previous hash, is known)."""
    return InboxRow(
        membership_id=standing.membership_id,
        version=version,
        org_id=notification.org_id,
        customer_id=notification.customer_id,
        partner_program_id=notification.partner_program_id,
        previous_hash=previous_hash,
        fingerprint=notification.fingerprint,
        event_id=notification.event_id,
        occurred_at_ms=int(notification.occurred_at.timestamp() * 1000),
        recorded_at_us=int(timestamp.timestamp() * 1_000_000),
    )
