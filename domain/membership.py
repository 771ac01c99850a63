"""The PartnerMembership aggregate: one (org, customer, partner program) membership.

Events are recorded in arrival order; each keeps its occurrence time. The membership's state is
the fold of all its recorded events sorted by occurrence time (ties: arrival order), so a late
or reordered delivery never rolls state back and any arrival order of the same events gives the
same state. Each event states what was true in Capillary when it occurred:

=============  ==========================================  ==================================
event          not linked yet, or delinked                 linked
=============  ==========================================  ==================================
Linked         opens a period (linked_at = occurrence)     same: a new period
Updated        opens an *inferred* period, then applies    applies the fields present
Delinked       DELINKED; already DELINKED: no change        closes the period
Reminded       never seen: inferred period, then applies;  sets scheduled expiry and
               DELINKED: recorded, no change               last_reminder_at
=============  ==========================================  ==================================

Anomalies (update after delink, link while linked, tier moved against UPGRADE...) are facts
recorded on the event; they never reject a notification.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar, Final, NamedTuple
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.keys import MEMBERSHIP_NAMESPACE, MembershipKey, membership_id
from domain.notifications import Kind, Notification


class Status(StrEnum):
    LINKED = "LINKED"
    DELINKED = "DELINKED"


PERIOD_FIELDS: Final = (
    "tier_number",
    "tier_expiry_date",
    "tier_expiry_at",
    "membership_number",
    "membership_expiry_date",
    "membership_expiry_at",
    "scheduled_expiry_date",
    "last_update_type",
    "last_reminder_at",
)


class MembershipState(NamedTuple):
    """What the ledger knows about one membership: the fold of its events.

    Immutable; a named tuple rather than a dataclass because the fold copies it for every
    event, and ``_replace`` is an order of magnitude cheaper than ``dataclasses.replace``."""

    org_id: int
    customer_id: int
    partner_program_id: int
    loyalty_program_id: int | None = None
    partner_program_name: str | None = None
    partner_program_type: str | None = None
    status: Status | None = None
    link_inferred: bool = False
    linked_at: datetime | None = None
    delinked_at: datetime | None = None
    tier_number: int | None = None
    tier_expiry_date: date | None = None
    tier_expiry_at: datetime | None = None
    membership_number: str | None = None
    membership_expiry_date: date | None = None
    membership_expiry_at: datetime | None = None
    scheduled_expiry_date: date | None = None
    last_update_type: str | None = None
    last_reminder_at: datetime | None = None
    event_count: int = 0

    @property
    def key(self) -> MembershipKey:
        return MembershipKey(self.org_id, self.customer_id, self.partner_program_id)


class Snapshot(NamedTuple):
    """Where a membership stands after its latest event: its version, state and latest
    occurrence. Stored beside the events (table ``ledger_heads``, a stored name), so that
    recording one more in-order event does not need to read and fold the whole history.
    Not the library's snapshots (``eventsourcing.domain.Snapshot``), which this ledger does
    not use."""

    membership_id: UUID
    version: int
    state: MembershipState
    latest_occurrence: datetime


@dataclass(frozen=True)
class Step:
    """One event's effect in the occurrence-order fold."""

    event: PartnerMembership.Recorded
    before: MembershipState
    after: MembershipState
    anomalies: tuple[str, ...]
    applied: bool

    @classmethod
    def of(cls, state: MembershipState, event: PartnerMembership.Recorded) -> Step:
        """One step of the fold: ``event`` applied to ``state``."""
        after, anomalies, applied = apply_event(state, event)
        return cls(event, state, after, tuple(anomalies), applied)

    def changes(self) -> dict[str, tuple[Any, Any]]:
        """Fields this event changed: name -> (before, after). ``event_count`` is left out."""
        return {
            name: (before, after)
            for name, before, after in zip(
                MembershipState._fields, self.before, self.after, strict=True
            )
            if name != "event_count" and before != after
        }


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

    def fingerprints(self) -> set[str]:
        return {event.fingerprint for event in self.recorded}


def event_fields(notification: Notification) -> dict[str, Any]:
    """The recorded event's fields for ``notification`` (all but the recording time, the
    anomalies and the sealed identifiers), its kind's own field included."""
    fields: dict[str, Any] = {
        "org_id": notification.org_id,
        "customer_id": notification.customer_id,
        "partner_program_id": notification.partner_program_id,
        "occurred_at": notification.occurred_at,
        "delivered_at": None
        if notification.delivered_at_ms is None
        else datetime.fromtimestamp(notification.delivered_at_ms / 1000, tz=UTC),
        "loyalty_program_id": notification.loyalty_program_id,
        "partner_program_name": notification.partner_program_name,
        "partner_program_type": notification.partner_program_type,
        "details": notification.details.present(),
        "expiry_instants": {
            name: None if millis is None else datetime.fromtimestamp(millis / 1000, tz=UTC)
            for name, millis in notification.expiry_instants.present().items()
        },
        "fingerprint": notification.fingerprint,
        "source": {
            "event_name": notification.event_name,
            "event_id": notification.event_id,
            "ref_id": notification.ref_id,
            "api_request_id": notification.api_request_id,
            "shape": notification.shape.value,
        },
    }
    if notification.kind is Kind.UPDATED:
        fields["update_type"] = notification.update_type
    elif notification.kind is Kind.REMINDED:
        fields["scheduled_expiry_date"] = notification.scheduled_expiry_date
    return fields


# --- the fold ------------------------------------------------------------------------------


def occurrence_order(events: Iterable[PartnerMembership.Recorded]) -> list[Any]:
    """Events sorted by occurrence time; ties keep arrival (recording) order."""
    return sorted(events, key=lambda e: (e.occurred_at, e.originator_version))


def fold_steps(
    key: MembershipKey,
    events: Sequence[PartnerMembership.Recorded],
    *,
    start: MembershipState | None = None,
) -> tuple[MembershipState, list[Step]]:
    """Fold events in occurrence order into a state, keeping each event's step. ``start``:
    the state after earlier events, all of which sort before these (default: none)."""
    state = MembershipState(*key) if start is None else start
    steps: list[Step] = []
    for event in occurrence_order(events):
        step = Step.of(state, event)
        steps.append(step)
        state = step.after
    return state, steps


def fold_state(key: MembershipKey, events: Sequence[PartnerMembership.Recorded]) -> MembershipState:
    """The state alone, without each event's step: what the views need."""
    state = MembershipState(*key)
    for event in occurrence_order(events):
        state = apply_event(state, event)[0]
    return state


class Fact(NamedTuple):
    """What the fold reads of a recorded event (`PartnerMembership.Recorded` defines the
    fields), without the event object: the write pipeline folds these plain values, the
    aggregate folds its events the same way."""

    kind: Kind
    originator_version: int  # where it sorts among recorded events of equal occurrence
    occurred_at: datetime
    loyalty_program_id: int
    partner_program_name: str | None
    partner_program_type: str | None
    details: dict[str, Any]
    expiry_instants: dict[str, datetime | None]
    update_type: str | None = None
    scheduled_expiry_date: date | None = None

    @classmethod
    def of(cls, kind: Kind, version: int, fields: dict[str, Any]) -> Fact:
        """The fold's view of an event of ``kind`` at ``version`` with `event_fields`."""
        read = {name: fields[name] for name in cls._fields[2:] if name in fields}
        return cls(kind, version, **read)


def apply_event(state: MembershipState, event: Any) -> tuple[MembershipState, list[str], bool]:
    """``event`` (a recorded event or a `Fact`) applied to ``state``: the new state, the
    anomalies, whether it applied. One copy of the state per event: the changes are gathered
    first, then applied together."""
    changes, anomalies, applied = _changes(state, event)
    if applied:
        _program_changes(state, event, anomalies, changes)
    changes["event_count"] = state.event_count + 1
    return state._replace(**changes), anomalies, applied


_RESET: Final[dict[str, Any]] = dict.fromkeys(PERIOD_FIELDS)


def _opened(*, linked_at: datetime | None) -> dict[str, Any]:
    """The changes that open a new period (period fields reset)."""
    return {
        "status": Status.LINKED,
        "linked_at": linked_at,
        "link_inferred": linked_at is None,
        "delinked_at": None,
        **_RESET,
    }


def _changes(state: MembershipState, event: Any) -> tuple[dict[str, Any], list[str], bool]:
    """One event's effect: the fields it changes, the anomalies it shows, whether it applied."""
    anomalies: list[str] = []
    at = event.occurred_at
    if event.kind is Kind.LINKED:
        if state.status is Status.LINKED:
            anomalies.append("LINK_WHILE_LINKED")
        return _opened(linked_at=at) | event.details | _instant_changes(event), anomalies, True

    if event.kind is Kind.DELINKED:
        if state.status is Status.DELINKED:
            anomalies.append("DOUBLE_DELINK")
            return {}, anomalies, False
        if state.status is None:
            anomalies.append("DELINK_WITHOUT_LINK")
        return {"status": Status.DELINKED, "delinked_at": at}, anomalies, True

    changes: dict[str, Any] = {}
    if event.kind is Kind.REMINDED:
        if state.status is Status.DELINKED:
            anomalies.append("REMINDER_AFTER_DELINK")
            return {}, anomalies, False
        expiry_before = state.membership_expiry_date
        if state.status is None:
            anomalies.append("REMINDER_WITHOUT_LINK")
            changes = _opened(linked_at=None)
            expiry_before = None
        expiry = event.scheduled_expiry_date
        if expiry_before is not None and expiry_before != expiry:
            anomalies.append("EXPIRY_MISMATCH")
        if state.partner_program_type == "EXTERNAL":
            anomalies.append("REMINDER_FOR_EXTERNAL")
        changes |= {"scheduled_expiry_date": expiry, "last_reminder_at": at}
        return changes, anomalies, True

    tier_before = state.tier_number
    if state.status is not Status.LINKED:
        anomalies.append("UPDATE_AFTER_DELINK" if state.status else "UPDATE_WITHOUT_LINK")
        changes = _opened(linked_at=None)
        tier_before = None
    anomalies.extend(_tier_direction(tier_before, event))
    changes |= event.details | _instant_changes(event)
    if event.update_type is not None:
        changes["last_update_type"] = event.update_type
    return changes, anomalies, True


_INSTANTS: Final = (
    ("tier_expiry_at", "tier_expiry_date"),
    ("membership_expiry_at", "membership_expiry_date"),
)


def _instant_changes(event: Any) -> dict[str, datetime | None]:
    """The expiry instants an event sets: the ones it carries, and none (null) beside a date
    it carries without its instant, so that an instant never outlives the date it came with."""
    instants = event.expiry_instants or {}
    changes: dict[str, datetime | None] = {}
    for instant, day in _INSTANTS:
        if instant in instants:
            changes[instant] = instants[instant]
        elif day in event.details:
            changes[instant] = None
    return changes


def _tier_direction(before: int | None, event: Any) -> list[str]:
    after = event.details.get("tier_number")
    if before is None or after is None:
        return []
    against = (event.update_type == "UPGRADE" and after < before) or (
        event.update_type == "DOWNGRADE" and after > before
    )
    return ["TIER_AGAINST_UPDATE_TYPE"] if against else []


def _program_changes(
    state: MembershipState, event: Any, anomalies: list[str], changes: dict[str, Any]
) -> None:
    """Program fields take the value of the latest applied event that carries them (no
    event changes them otherwise, so ``state`` holds their values before this one)."""
    changes["loyalty_program_id"] = event.loyalty_program_id
    if state.loyalty_program_id not in (None, event.loyalty_program_id):
        anomalies.append("LOYALTY_PROGRAM_CHANGED")
    if event.partner_program_name is not None:
        changes["partner_program_name"] = event.partner_program_name
    if event.partner_program_type is not None:
        if state.partner_program_type not in (None, event.partner_program_type):
            anomalies.append("PROGRAM_TYPE_CHANGED")
        changes["partner_program_type"] = event.partner_program_type


def is_late(event: PartnerMembership.Recorded, recorded: Sequence[Any]) -> bool:
    """An event arrived late when an event recorded before it occurred after it."""
    return any(
        other.originator_version < event.originator_version
        and other.occurred_at > event.occurred_at
        for other in recorded
    )


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
