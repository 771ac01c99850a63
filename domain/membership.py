"""The PartnerMembership aggregate: one (org, customer, partner program) membership.

Events are recorded in arrival order; each keeps its occurrence time. The membership's state is
the fold of all its recorded events sorted by occurrence time (ties: arrival order): the rules
and the fold are in `domain.rules`, the state in `domain.state`. Each stored event is exactly
one notification.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.event_fields import event_fields
from domain.keys import MEMBERSHIP_NAMESPACE, MembershipKey, membership_id
from domain.notifications import Kind, Notification
from domain.rules import (
    Fact,
    Step,
    apply_event,
    fold_state,
    fold_steps,
    is_late,
    occurrence_order,
)
from domain.state import MembershipState, Snapshot, Status


class PartnerMembership(Aggregate):
    """A customer's membership of one partner program, in one org."""

    TOPIC: ClassVar[str] = "partner_ledger.PartnerMembership"

    class Event(Aggregate.Event):
        """Every membership event. The first one also creates the aggregate: there is no
        separate 'created' event, so each stored event is exactly one notification."""

        TOPIC: ClassVar[str] = "partner_ledger.PartnerMembership.Event"

        def mutate(self, aggregate: Any) -> Any:
            if aggregate is None:
                aggregate = PartnerMembership.shell(self.originator_id, self.timestamp)
            return super().mutate(aggregate)

    class Recorded(Event):
        """A notification recorded against this membership.

        Version 2 added ``delivered_at`` (shape A's ``timeStamp``, the delivery time); events
        stored by release 1 are upcast with ``delivered_at`` None. Version 3 added
        ``expiry_instants`` (the ``...InMillis`` instants present: ``tier_expiry_at``,
        ``membership_expiry_at``); events stored by releases 1 and 2 are upcast with none. The
        stored bytes are never rewritten, so their hash chains still verify."""

        TOPIC: ClassVar[str] = "partner_ledger.PartnerMembership.Recorded"
        kind: ClassVar[Kind]
        class_version: ClassVar[int] = 3

        org_id: int
        customer_id: int
        partner_program_id: int
        occurred_at: datetime
        loyalty_program_id: int
        partner_program_name: str | None
        partner_program_type: str | None
        details: dict[str, Any]
        fingerprint: str
        source: dict[str, str | None]
        identifiers: str | None  # sealed per customer; see infrastructure/vault.py
        anomalies: list[str]
        delivered_at: datetime | None
        expiry_instants: dict[str, datetime | None]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["delivered_at"] = None

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["expiry_instants"] = {}

        def apply(self, aggregate: PartnerMembership) -> None:
            aggregate._append(self)

    class Linked(Recorded):
        TOPIC: ClassVar[str] = "partner_ledger.PartnerMembership.Linked"
        kind: ClassVar[Kind] = Kind.LINKED

    class Updated(Recorded):
        TOPIC: ClassVar[str] = "partner_ledger.PartnerMembership.Updated"
        kind: ClassVar[Kind] = Kind.UPDATED
        update_type: str | None

    class Delinked(Recorded):
        TOPIC: ClassVar[str] = "partner_ledger.PartnerMembership.Delinked"
        kind: ClassVar[Kind] = Kind.DELINKED

    class ExpiryReminded(Recorded):
        TOPIC: ClassVar[str] = "partner_ledger.PartnerMembership.ExpiryReminded"
        kind: ClassVar[Kind] = Kind.REMINDED
        scheduled_expiry_date: date

    @staticmethod
    def shell(aggregate_id: UUID, timestamp: datetime) -> PartnerMembership:
        """An empty membership at version 0, before its first event."""
        membership = PartnerMembership.__new__(PartnerMembership)
        membership.__base_init__(
            originator_id=aggregate_id, originator_version=0, timestamp=timestamp
        )
        membership.recorded = []
        membership._folded = None
        membership._latest_occurrence = datetime.min.replace(tzinfo=UTC)
        membership._resumed_at = 0
        return membership

    @classmethod
    def resume(cls, snapshot: Snapshot) -> PartnerMembership:
        """A membership picked up from its snapshot without its events: enough to record
        events that occurred no earlier than its latest, and nothing else."""
        membership = cls.shell(snapshot.membership_id, cls.Event.create_timestamp())
        membership._version = snapshot.version
        membership._folded = (snapshot.state, [])
        membership._latest_occurrence = snapshot.latest_occurrence
        membership._resumed_at = snapshot.version
        return membership

    @classmethod
    def new(cls, key: MembershipKey) -> PartnerMembership:
        """A membership the ledger has not seen yet; its first recorded event creates it."""
        membership = cls.shell(membership_id(key), cls.Event.create_timestamp())
        membership._folded = (MembershipState(*key), [])
        return membership

    recorded: list[Recorded]
    _folded: tuple[MembershipState, list[Step]] | None
    _latest_occurrence: datetime
    _resumed_at: int  # events up to this version were not loaded (0: all were)

    # --- commands --------------------------------------------------------------------------

    def record(self, notification: Notification, *, sealed_identifiers: str | None = None) -> None:
        """Record a notification as the next event, whatever its kind. Its customer
        identifiers are stored only in ``sealed_identifiers`` (encrypted per customer)."""
        commands = {
            Kind.LINKED: self.link,
            Kind.UPDATED: self.update,
            Kind.DELINKED: self.delink,
            Kind.REMINDED: self.remind,
        }
        commands[notification.kind](notification, identifiers=sealed_identifiers)

    def link(self, notification: Notification, *, identifiers: str | None = None) -> None:
        self._record_event(self.Linked, notification, identifiers)

    def update(self, notification: Notification, *, identifiers: str | None = None) -> None:
        self._record_event(self.Updated, notification, identifiers)

    def delink(self, notification: Notification, *, identifiers: str | None = None) -> None:
        self._record_event(self.Delinked, notification, identifiers)

    def remind(self, notification: Notification, *, identifiers: str | None = None) -> None:
        self._record_event(self.ExpiryReminded, notification, identifiers)

    def _record_event(
        self, event_class: type[Recorded], notification: Notification, identifiers: str | None
    ) -> None:
        fields = event_fields(notification) | {"identifiers": identifiers}
        timestamp = event_class.create_timestamp()
        # Learn which anomalies the event brings, so that they are recorded on the event
        # itself: what the ledger saw when the event arrived.
        if self.sorts_last(notification.occurred_at):
            fact = Fact.of(event_class.kind, 0, fields)
            found = apply_event(self._current(notification.key), fact)[1]
        else:
            if self._resumed_at:
                raise LookupError("an out-of-order event needs the membership's whole history")
            candidate = event_class(  # type: ignore[call-arg]
                originator_id=self.id,
                originator_version=self.version + 1,
                timestamp=timestamp,
                anomalies=[],
                **fields,
            )
            _, steps = fold_steps(notification.key, [*self.recorded, candidate])
            found = list(next(step.anomalies for step in steps if step.event is candidate))
        anomalies = list(dict.fromkeys([*notification.anomalies, *found]))
        self.trigger_event(event_class, timestamp=timestamp, anomalies=anomalies, **fields)

    def sorts_last(self, occurred_at: datetime) -> bool:
        """True when an event that occurred at ``occurred_at`` sorts after every recorded
        one: the common in-order case, where the fold only needs one more step."""
        return occurred_at >= self._latest_occurrence

    def _current(self, key: MembershipKey) -> MembershipState:
        return self.state if self.version else MembershipState(*key)

    # --- state -----------------------------------------------------------------------------

    def _append(self, event: Recorded) -> None:
        """``event`` (recorded now, or loaded) joins the history; the cached fold takes one
        more step when it sorts last, else it is folded again when next needed."""
        if self._folded is not None and self.sorts_last(event.occurred_at):
            state, steps = self._folded
            step = Step.of(state, event)
            self._folded = (step.after, [*steps, step])
        else:
            self._folded = None
        self.recorded.append(event)
        if event.occurred_at > self._latest_occurrence:
            self._latest_occurrence = event.occurred_at

    @property
    def pending_count(self) -> int:
        """Events triggered but not yet collected (saved)."""
        return len(self.pending_events)

    @property
    def key(self) -> MembershipKey:
        first = self.recorded[0] if self.recorded else None
        if first is None:
            raise LookupError("a membership has no key before its first event")
        return MembershipKey(first.org_id, first.customer_id, first.partner_program_id)

    def _state_and_steps(self) -> tuple[MembershipState, list[Step]]:
        if self._folded is None:
            if self._resumed_at:
                raise LookupError("a membership resumed from its snapshot has no full history")
            self._folded = fold_steps(self.key, self.recorded)
        return self._folded

    def event(self, version: int) -> Recorded:
        """The recorded event at ``version`` (loaded or recorded since loading)."""
        return self.recorded[version - 1 - self._resumed_at]

    @property
    def snapshot(self) -> Snapshot:
        """What the next batch needs to go on from here without loading the events."""
        return Snapshot(self.id, self.version, self.state, self._latest_occurrence)

    @property
    def state(self) -> MembershipState:
        """The current state: the occurrence-order fold of every recorded event."""
        return self._state_and_steps()[0]

    @property
    def steps(self) -> list[Step]:
        """Each event's effect, in occurrence order."""
        return self._state_and_steps()[1]


__all__ = [
    "MEMBERSHIP_NAMESPACE",
    "Fact",
    "MembershipKey",
    "MembershipState",
    "PartnerMembership",
    "Snapshot",
    "Status",
    "Step",
    "apply_event",
    "event_fields",
    "fold_state",
    "fold_steps",
    "is_late",
    "membership_id",
    "occurrence_order",
]
