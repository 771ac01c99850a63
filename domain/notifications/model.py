"""The validated notification: what Capillary said about one membership, and its fingerprint."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cached_property
from typing import Any, Final, Self

from pydantic import BaseModel, ConfigDict

from domain.keys import MembershipKey
from domain.notifications.fields import (
    CalendarDate,
    CodeText,
    EmailText,
    EpochMillis,
    Identifier,
    IdText,
    MobileText,
    NameText,
    TierNumber,
)


class Shape(StrEnum):
    """Which JSON shape a notification came in."""

    A = "A"
    B = "B"
    C = "C"
    R = "R"


class Kind(StrEnum):
    """What a notification says happened to a membership."""

    LINKED = "linked"
    UPDATED = "updated"
    DELINKED = "delinked"
    REMINDED = "reminded"


EVENT_KINDS: Final[dict[str, Kind]] = {
    "partnerProgramLinked": Kind.LINKED,
    "partnerProgramUpdated": Kind.UPDATED,
    "partnerProgramDelinked": Kind.DELINKED,
    "supplementaryMembershipExpiryReminder": Kind.REMINDED,
    "PP_EXPIRY_JOB": Kind.UPDATED,
}
RENEWAL_JOB: Final = "PP_EXPIRY_JOB"
KNOWN_PROGRAM_TYPES: Final = frozenset({"EXTERNAL", "SUPPLEMENTARY"})
KNOWN_UPDATE_TYPES: Final = frozenset(
    {
        "UPGRADE",
        "DOWNGRADE",
        "RENEW",
        "MEMBERSHIP_RENEWAL_INITIATION",
        "MEMBERSHIP_RELINKING_CANCELLED",
    }
)


class Details(BaseModel):
    """The membership details a notification carries. Absent is not the same as null:
    ``model_fields_set`` holds exactly the fields the payload named."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tier_number: TierNumber = None
    tier_expiry_date: CalendarDate = None
    membership_number: NameText = None
    membership_expiry_date: CalendarDate = None

    def present(self) -> dict[str, Any]:
        """The fields the payload named, with their (possibly null) values."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class ExpiryInstants(BaseModel):
    """The ``...InMillis`` instants of Capillary's newer payloads, beside the date strings:
    ``partnerTierExpiryDateInMillis`` and ``membershipExpiryDateInMillis`` (epoch ms). Kept
    with the event, never part of the fingerprint. Absent is not the same as null."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tier_expiry_at: int | None = None
    membership_expiry_at: int | None = None

    def present(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class Identifiers(BaseModel):
    """Customer identifiers: personal data, kept with the event and never logged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mobile: MobileText = None
    email: EmailText = None
    external_id: NameText = None


class Notification(BaseModel):
    """One validated, normalized Capillary notification about one membership."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_name: str
    kind: Kind
    shape: Shape
    org_id: Identifier
    customer_id: Identifier
    partner_program_id: Identifier
    loyalty_program_id: Identifier
    occurred_at_ms: EpochMillis
    delivered_at_ms: int | None = None
    partner_program_name: NameText = None
    partner_program_type: CodeText = None
    update_type: CodeText = None
    details: Details = Details()
    expiry_instants: ExpiryInstants = ExpiryInstants()
    scheduled_expiry_date: CalendarDate = None
    event_id: IdText = None
    ref_id: IdText = None
    api_request_id: IdText = None
    identifiers: Identifiers = Identifiers()
    anomalies: tuple[str, ...] = ()

    @property
    def key(self) -> MembershipKey:
        """The membership this notification is about."""
        return MembershipKey(self.org_id, self.customer_id, self.partner_program_id)

    @property
    def occurred_at(self) -> datetime:
        return datetime.fromtimestamp(self.occurred_at_ms / 1000, tz=UTC)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("fingerprint", None)  # computed from fields that may have changed
        return copied

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the business content: what happened, to whom, when. Delivery metadata
        (``refId``, ``apiRequestId``, ``eventId``, shape, whitespace) does not count, nor do
        the expiry instants (a redelivery of a payload recorded before they were read must
        stay a duplicate)."""
        content = {
            "event": self.kind.value,
            "org": self.org_id,
            "customer": self.customer_id,
            "program": self.partner_program_id,
            "occurred_at_ms": self.occurred_at_ms,
            "update_type": self.update_type,
            "details": {k: _canonical(v) for k, v in self.details.present().items()},
            "scheduled_expiry_date": _canonical(self.scheduled_expiry_date),
        }
        canonical = _CANONICAL.encode(content)
        return hashlib.sha256(canonical.encode()).hexdigest()


# What json.dumps(content, sort_keys=True, separators=(",", ":")) builds on every call.
_CANONICAL: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def _canonical(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value
