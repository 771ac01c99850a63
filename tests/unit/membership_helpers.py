"""Builders for membership notifications, so rule tests read as given/when/then."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.keys import MembershipKey
from domain.membership import MembershipState, PartnerMembership
from domain.notifications import Details, Kind, Notification, Shape

BASE_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z
KEY = MembershipKey(50191, 354971193, 25)
EVENT_NAMES = {
    Kind.LINKED: "partnerProgramLinked",
    Kind.UPDATED: "partnerProgramUpdated",
    Kind.DELINKED: "partnerProgramDelinked",
    Kind.REMINDED: "supplementaryMembershipExpiryReminder",
}


def at(second: int) -> datetime:
    return datetime.fromtimestamp((BASE_MS + second * 1000) / 1000, tz=UTC)


def note(
    kind: Kind,
    second: int,
    *,
    update_type: str | None = None,
    scheduled: str | None = None,
    name: str | None = "Demo-p1",
    program_type: str | None = "EXTERNAL",
    loyalty_program_id: int = 855,
    event_id: str | None = None,
    **details: Any,
) -> Notification:
    """A notification about KEY that occurred ``second`` seconds after BASE_MS."""
    return Notification(
        event_name=EVENT_NAMES[kind],
        kind=kind,
        shape=Shape.B,
        org_id=KEY[0],
        customer_id=KEY[1],
        partner_program_id=KEY[2],
        loyalty_program_id=loyalty_program_id,
        occurred_at_ms=BASE_MS + second * 1000,
        partner_program_name=name,
        partner_program_type=None if kind is Kind.REMINDED else program_type,
        update_type=update_type,
        details=Details(**details),
        scheduled_expiry_date=scheduled,
        event_id=event_id,
    )


def linked(second: int, **kwargs: Any) -> Notification:
    return note(Kind.LINKED, second, **kwargs)


def updated(second: int, update_type: str | None = "UPGRADE", **kwargs: Any) -> Notification:
    return note(Kind.UPDATED, second, update_type=update_type, **kwargs)


def delinked(second: int, **kwargs: Any) -> Notification:
    return note(Kind.DELINKED, second, **kwargs)


def reminded(second: int, scheduled: str = "2024-06-01", **kwargs: Any) -> Notification:
    return note(Kind.REMINDED, second, scheduled=scheduled, **kwargs)


def record_all(notifications: list[Notification]) -> PartnerMembership:
    """Record notifications in the given (arrival) order on a new membership."""
    membership = PartnerMembership.new(KEY)
    for notification in notifications:
        membership.record(notification)
    return membership


def state_of(notifications: list[Notification]) -> MembershipState:
    return record_all(notifications).state
