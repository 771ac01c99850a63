"""The rules: one event applied to a membership's state, and the occurrence-order fold.

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
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from domain.keys import MembershipKey
from domain.notifications import Kind
from domain.state import PERIOD_FIELDS, MembershipState, Status

if TYPE_CHECKING:
    from domain.membership import PartnerMembership


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
