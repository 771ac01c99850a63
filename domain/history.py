"""Audit reads: a membership's history, and state at a moment in either kind of time.

Every event has an **occurrence time** (Capillary's ``createdAt``) and a **recording time**
(when the ledger stored it; the inbox keeps it in a column, indexed per membership and per org):

- ``as_of=T``: the state that was true at T, as known now: the fold of the events that occurred
  at or before T;
- ``as_known_at=K``: what the ledger said at K: the fold of the events recorded at or before K;
- both: what the ledger at K believed was true at T.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from domain.errors import MembershipNotFoundError
from domain.ledger import Ledger, iso, jsonable
from domain.membership import (
    MembershipKey,
    MembershipState,
    PartnerMembership,
    Step,
    fold_state,
    is_late,
)


class Chronicle:
    """History and time travel over one ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def history(self, key: MembershipKey) -> list[dict[str, Any]]:
        """Every recorded event of one membership, in recording order, with what it changed."""
        membership = self.ledger.membership(key)
        positions = self.ledger.store.positions(membership.id)
        entries = list(_entries(membership, positions, membership.recorded))
        for entry, event in zip(entries, membership.recorded, strict=True):
            # Personal data, shown only here and only while the customer's key exists.
            entry["identifiers"] = self.ledger.store.unseal(
                event.org_id, event.customer_id, event.identifiers
            )
            entry["identifiers_forgotten"] = bool(event.identifiers) and not entry["identifiers"]
        return entries

    def changes(
        self, *, org_id: int, partner_program_id: int | None, start: datetime, end: datetime
    ) -> Iterator[dict[str, Any]]:
        """Events recorded in [start, end] across the org's memberships (the auditor's "what
        changed last week"), membership by membership, in key order."""
        keys = self.ledger.store.membership_keys(
            org_id=org_id,
            partner_program_id=partner_program_id,
            recorded_from_us=_us(start),
            recorded_to_us=_us(end),
        )
        for membership in self._load(keys):
            positions = self.ledger.store.positions(membership.id)
            in_period = [e for e in membership.recorded if start <= e.timestamp <= end]
            for entry in _entries(membership, positions, in_period):
                yield {"membership": membership.key._asdict()} | entry

    def count_changed(
        self, *, org_id: int, partner_program_id: int | None, start: datetime, end: datetime
    ) -> int:
        """How many memberships `changes` goes through (the count, without their keys)."""
        return self.ledger.store.count_memberships(
            org_id=org_id,
            partner_program_id=partner_program_id,
            recorded_from_us=_us(start),
            recorded_to_us=_us(end),
        )

    def state_at(
        self,
        key: MembershipKey,
        *,
        as_of: datetime | None = None,
        as_known_at: datetime | None = None,
    ) -> MembershipState:
        membership = self.ledger.membership(key)
        state = _state_at(membership, as_of=as_of, as_known_at=as_known_at)
        if state is None:
            raise MembershipNotFoundError(
                f"no event of membership org {key.org_id}, customer {key.customer_id}, "
                f"partner program {key.partner_program_id} {_window(as_of, as_known_at)}"
            )
        return state

    def states_at(
        self, *, as_of: datetime | None = None, as_known_at: datetime | None = None
    ) -> Iterator[MembershipState]:
        """Every membership's state at that time, in key order (the quarter-end report)."""
        keys = self.ledger.store.membership_keys(
            occurred_to_ms=None if as_of is None else _us(as_of) // 1000,
            recorded_to_us=None if as_known_at is None else _us(as_known_at),
        )
        for membership in self._load(keys):
            state = _state_at(membership, as_of=as_of, as_known_at=as_known_at)
            if state is not None:
                yield state

    def _load(self, ids: Sequence[UUID], chunk: int = 500) -> Iterator[PartnerMembership]:
        """Memberships in the given order, loaded a chunk at a time (memory stays flat)."""
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            streams = self.ledger.store.select_streams(part)
            for membership_id in part:
                membership: PartnerMembership | None = None
                for _, stored in streams.get(membership_id, ()):
                    event = cast(
                        PartnerMembership.Event, self.ledger.mapper.to_domain_event(stored)
                    )
                    membership = event.mutate(membership)
                if membership is not None:
                    yield membership


def _state_at(
    membership: PartnerMembership, *, as_of: datetime | None, as_known_at: datetime | None
) -> MembershipState | None:
    events = [
        e
        for e in membership.recorded
        if (as_of is None or e.occurred_at <= as_of)
        and (as_known_at is None or e.timestamp <= as_known_at)
    ]
    return fold_state(membership.key, events) if events else None


def _entries(
    membership: PartnerMembership,
    positions: dict[int, int],
    events: Sequence[PartnerMembership.Recorded],
) -> Iterator[dict[str, Any]]:
    steps: dict[int, Step] = {step.event.originator_version: step for step in membership.steps}
    for event in events:
        step = steps[event.originator_version]
        yield {
            "position": positions.get(event.originator_version),
            "version": event.originator_version,
            "recorded_at": iso(event.timestamp),
            "occurred_at": iso(event.occurred_at),
            "delivered_at": None if event.delivered_at is None else iso(event.delivered_at),
            "event": event.source["event_name"],
            "kind": event.kind.value,
            "update_type": getattr(event, "update_type", None),
            "source": dict(event.source),
            "expiry_instants": {
                name: None if moment is None else iso(moment)
                for name, moment in event.expiry_instants.items()
            },
            "changes": {
                name: [jsonable(before), jsonable(after)]
                for name, (before, after) in step.changes().items()
            },
            "applied": step.applied,
            "anomalies": list(event.anomalies),
            "late": is_late(event, membership.recorded),
        }


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _window(as_of: datetime | None, as_known_at: datetime | None) -> str:
    parts = []
    if as_of is not None:
        parts.append(f"occurred by {iso(as_of)}")
    if as_known_at is not None:
        parts.append(f"was recorded by {iso(as_known_at)}")
    return " and ".join(parts)
