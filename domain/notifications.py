"""What Capillary said: its payload shapes, normalized into one validated `Notification`.

Capillary sends each partner-program notification in one of several JSON shapes, detected per
message (never per event type):

- **A** envelope: ``eventId, eventType, consumerGroupId, actionType, timeStamp,
  attributes{createdAt, data, eventName, refId, apiRequestId, orgId}``;
- **B** flat: ``eventName, eventId, orgId, refId, apiRequestId, createdAt, data, loyaltyEventId``;
- **C** newer flat webhook: like B plus ``eventSearchKey``, often without ``eventId``;
- **R** raw event log: ``eventName, eventLogId, data, ..., traceAttributes, orgId``.

Normalization: every key is stripped at every depth (``"orgId "`` is ``orgId``), so is every
string value (``"Drivers "`` is ``Drivers``); mobile numbers lose all inner whitespace. Ids are
integers (int, digit string, or a JSON number with a fraction or exponent whose exact decimal
value is an integer: ``9007199254740993.0`` is 9007199254740993); ``createdAt`` is epoch
milliseconds and is the occurrence time (``timeStamp`` in shape A is delivery time). Anything
that does not fit raises `InvalidNotificationError` with a stable reason code and a sentence
naming each offending field.
Payload key names never leave this module: the rest of the ledger sees `Notification` only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Final, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from domain.errors import InvalidNotificationError, Reason
from domain.keys import MembershipKey


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

# createdAt must fall in [2000-01-01, 2100-01-01): the raw event-log samples carry
# placeholders such as 3563, which are integers but not times anyone could mean.
_EARLIEST_MS: Final = 946_684_800_000
_LATEST_MS: Final = 4_102_444_800_000
# An expiry instant may lie far ahead (Capillary's open-ended "link + 100 years"): any time
# from 1970 up to the end of year 9999 reads.
_LATEST_INSTANT_MS: Final = 253_402_300_800_000
# The UTC offsets in use anywhere (UTC-12:00 to UTC+14:00): an expiry instant agrees with its
# date string when some offset puts it on that calendar date.
_WEST_MS: Final = 12 * 3_600_000
_EAST_MS: Final = 14 * 3_600_000
_MAX_ID: Final = 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
_DATE = re.compile(rf"([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})(?:[ T]{_TIME})?")
# Every text that is indexed, keyed or shown has a limit, in characters (docs/domain.md): a
# longer one is BAD_VALUE. PostgreSQL cannot index a text of more than 2,704 bytes at all.
ID_TEXT_LIMIT: Final = 256  # eventId, refId, apiRequestId
NAME_LIMIT: Final = 256  # partnerProgramName, membershipNumber, externalId
CODE_LIMIT: Final = 64  # partnerProgramType, updateType
MOBILE_LIMIT: Final = 64
EMAIL_LIMIT: Final = 320  # the longest address RFC 5321 allows
# Unpaired surrogates cannot be encoded, and NUL cannot be stored in a PostgreSQL text column.
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")
_ORG_PREFIX = re.compile(r"^\d+_")


def _shown(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 256:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _integer(value: Any, *, minimum: int) -> int:
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, DecimalNumber):
        number = value.integer()
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and _INTEGER.fullmatch(value)
    ):
        number = int(value)
    else:
        number = None
    if number is None:
        raise PydanticCustomError(
            "bad_number", "{value} is not an integer", {"value": _shown(value)}
        )
    if not minimum <= number <= _MAX_ID:
        raise PydanticCustomError(
            "bad_number",
            "{value} is out of range (must be {minimum} to 2^63-1)",
            {"value": _shown(value), "minimum": minimum},
        )
    return number


def _identifier(value: Any) -> int:
    return _integer(value, minimum=1)


def _tier_number(value: Any) -> int | None:
    return None if value is None else _integer(value, minimum=0)


def _epoch_millis(value: Any) -> int:
    try:
        millis = _integer(value, minimum=0)
    except PydanticCustomError:
        raise PydanticCustomError(
            "bad_timestamp", "{value} is not epoch milliseconds", {"value": _shown(value)}
        ) from None
    if not _EARLIEST_MS <= millis < _LATEST_MS:
        raise PydanticCustomError(
            "bad_timestamp",
            "{value} is not a plausible epoch-milliseconds time (2000 to 2100)",
            {"value": _shown(value)},
        )
    return millis


def _calendar_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    match = _DATE.fullmatch(value) if isinstance(value, str) else None
    try:
        if match is None:
            raise ValueError
        return date.fromisoformat(match.group(1))
    except ValueError:
        raise PydanticCustomError(
            "bad_date", "{value} is not a YYYY-MM-DD date", {"value": _shown(value)}
        ) from None


def _bounded(limit: int) -> Callable[[Any], str | None]:
    def text(value: Any) -> str | None:
        checked = _text(value)
        if checked is not None and len(checked) > limit:
            raise PydanticCustomError(
                "bad_value",
                "{value} is {length} characters long, over the limit of {limit}",
                {"value": _shown(checked), "length": len(checked), "limit": limit},
            )
        return checked

    return text


def _bounded_upper(limit: int) -> Callable[[Any], str | None]:
    bounded = _bounded(limit)

    def text(value: Any) -> str | None:
        checked = bounded(value)
        return checked.upper() if checked else None

    return text


def _text(value: Any) -> str | None:
    if isinstance(value, DecimalNumber):
        # As release 1 wrote such a number as text (through a float), so that the
        # fingerprint of a redelivered payload does not change.
        return str(float(value))
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise PydanticCustomError("bad_value", "{value} is not text", {"value": _shown(value)})


Identifier = Annotated[int, BeforeValidator(_identifier)]
EpochMillis = Annotated[int, BeforeValidator(_epoch_millis)]
TierNumber = Annotated[int | None, BeforeValidator(_tier_number)]
CalendarDate = Annotated[date | None, BeforeValidator(_calendar_date)]
IdText = Annotated[str | None, BeforeValidator(_bounded(ID_TEXT_LIMIT))]
NameText = Annotated[str | None, BeforeValidator(_bounded(NAME_LIMIT))]
CodeText = Annotated[str | None, BeforeValidator(_bounded_upper(CODE_LIMIT))]
MobileText = Annotated[str | None, BeforeValidator(_bounded(MOBILE_LIMIT))]
EmailText = Annotated[str | None, BeforeValidator(_bounded(EMAIL_LIMIT))]


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
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


# --- parsing -----------------------------------------------------------------------------


def parse_notification(raw: bytes | str) -> Notification:
    """Parse and normalize one payload, or raise `InvalidNotificationError`."""
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
        body = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            parse_float=DecimalNumber,
        )
    except UnicodeDecodeError as error:
        raise InvalidNotificationError(
            Reason.NOT_JSON, f"the body is not UTF-8 ({error.reason} at byte {error.start})"
        ) from None
    except RecursionError:
        raise InvalidNotificationError(Reason.NOT_JSON, "the JSON is nested too deeply") from None
    except ValueError as error:
        raise InvalidNotificationError(Reason.NOT_JSON, f"the body is not JSON ({error})") from None
    return parse_object(body, storable=_storable(text, decoded=isinstance(raw, bytes)))


def _storable(text: str, *, decoded: bool) -> bool:
    """True when no key or string of this JSON text can hold a NUL or a lone surrogate: it
    has no raw NUL and no escape (nearly every payload), and, unless it was decoded from
    UTF-8 (which cannot carry a lone surrogate), no raw surrogate."""
    if "\\u" in text or "\x00" in text:
        return False
    return decoded or _UNSTORABLE.search(text) is None


class LongNumber(str):
    """A JSON integer too long to be any id; kept as its digits so that validation can name
    the field (Python refuses to convert integers of more than 4,300 digits)."""


# The largest decimal exponent an id (at most 2^63-1, 19 digits) can have.
_MAX_ID_EXPONENT: Final = 18


class DecimalNumber(str):
    """A JSON number written with a fraction or an exponent (``1.0``, ``9007199254740993.0``,
    ``1e999999999``), kept as sent: a float would round it before anyone could tell whether
    it is an integer, and an exponent could ask for an integer of a billion digits."""

    def integer(self) -> int | None:
        """Its exact value when that is an integer no longer than any id, else None
        (out-of-range magnitudes give a value beyond 2^63 that the range check refuses)."""
        try:
            number = Decimal(self)
        except InvalidOperation:
            return None
        if number.is_zero():
            return 0
        if number.adjusted() > _MAX_ID_EXPONENT:
            return _MAX_ID + 1 if number > 0 else -_MAX_ID - 1  # out of range either way
        if number != number.to_integral_value():
            return None
        return int(number)

    def __repr__(self) -> str:
        return str(self)  # shown in error sentences as the number it is, not as text


def _parse_int(digits: str) -> int | str:
    return int(digits) if len(digits) <= 64 else LongNumber(digits)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse_object(body: Any, *, storable: bool = False) -> Notification:
    """Normalize an already decoded JSON value, or raise `InvalidNotificationError`.
    ``storable``: the caller knows that no key or string holds a NUL or a lone surrogate."""
    if not isinstance(body, dict):
        raise InvalidNotificationError(
            Reason.NOT_AN_OBJECT, f"the body is a JSON {_json_type(body)}, not an object"
        )
    reading = _Reading(check_text=not storable)
    body = reading.clean(body)
    fields, prefix = _extract(body, reading)
    try:
        notification = Notification.model_validate(fields)
    except ValidationError as error:
        raise _invalid(error, prefix) from None
    return _with_value_anomalies(notification)


def _json_type(value: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


class _Reading:
    """One payload being read: the anomalies found so far, and whether its text still needs
    checking for characters that cannot be stored."""

    def __init__(self, *, check_text: bool) -> None:
        self.anomalies: list[str] = []
        self.check_text = check_text

    def clean(self, value: dict[str, Any]) -> dict[str, Any]:
        """Strip whitespace around the keys and string values of one object. The parser
        cleans every object it reads, at whatever depth, and never looks at the others (a raw
        event-log payload carries large profile trees that the ledger does not keep)."""
        if self.check_text:
            _check_storable(value)
        stripped: dict[str, Any] = {}
        for key, item in value.items():
            clean = key.strip()
            if clean in stripped:
                # Two keys that differ only in whitespace: the first one wins.
                self.anomalies.append("KEY_COLLISION")
                continue
            if type(item) is str:  # not a LongNumber or DecimalNumber, kept as sent
                item = item.strip()
            stripped[clean] = item
        return stripped


def _check_storable(value: dict[str, Any]) -> None:
    for key, item in value.items():
        if _UNSTORABLE.search(key):
            raise InvalidNotificationError(
                Reason.BAD_VALUE,
                f"the key {_shown(key)} holds a NUL or an unpaired surrogate escape",
            )
        if isinstance(item, str) and _UNSTORABLE.search(item):
            raise InvalidNotificationError(
                Reason.BAD_VALUE,
                f"the text {_shown(item)} holds a NUL or an unpaired surrogate escape",
            )


def _event_name(body: dict[str, Any], envelope: dict[str, Any], prefix: str) -> str:
    name = envelope.get("eventName") or body.get("eventName")
    if name is None and isinstance(body.get("eventType"), str):
        name = _ORG_PREFIX.sub("", body["eventType"])
    if name is None or name == "":
        raise InvalidNotificationError(Reason.MISSING_FIELD, f"{prefix}eventName is absent")
    if not isinstance(name, str) or name not in EVENT_KINDS:
        raise InvalidNotificationError(
            Reason.UNKNOWN_EVENT,
            f"{prefix}eventName {_shown(name)} is not one of {', '.join(EVENT_KINDS)}",
        )
    return name


def _shape(body: dict[str, Any]) -> Shape:
    if isinstance(body.get("attributes"), dict):
        return Shape.A
    if "eventLogId" in body or "traceAttributes" in body:
        return Shape.R
    if "eventSearchKey" in body:
        return Shape.C
    return Shape.B


def _object(parent: dict[str, Any], key: str, path: str, reading: _Reading) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidNotificationError(
            Reason.BAD_VALUE, f"{path} is a JSON {_json_type(value)}, not an object"
        )
    return reading.clean(value)


_DETAIL_KEYS: Final = {
    "partnerTierNumber": "tier_number",
    "partnerTierExpiryDate": "tier_expiry_date",
    "membershipNumber": "membership_number",
    "membershipExpiryDate": "membership_expiry_date",
}


# The expiry instants, and the detail (date) each one stands beside.
_INSTANT_KEYS: Final = {
    "partnerTierExpiryDateInMillis": ("tier_expiry_at", "tier_expiry_date"),
    "membershipExpiryDateInMillis": ("membership_expiry_at", "membership_expiry_date"),
}


_PATHS: Final = {
    "org_id": "orgId",
    "occurred_at_ms": "createdAt",
    "customer_id": "data.customerIdentifiers.customerId",
    "partner_program_id": "data.partnerProgramId",
    "loyalty_program_id": "data.loyaltyProgramId",
    "partner_program_name": "data.partnerProgramName",
    "partner_program_type": "data.partnerProgramType",
    "update_type": "data.updateType",
    "scheduled_expiry_date": "data.scheduledExpiryDate",
    "ref_id": "refId",
    "api_request_id": "apiRequestId",
    "identifiers.mobile": "data.customerIdentifiers.instore.mobile",
    "identifiers.email": "data.customerIdentifiers.instore.email",
    "identifiers.external_id": "data.customerIdentifiers.instore.externalId",
    **{
        f"details.{name}": f"data.customerPartnerProgramDetails.{key}"
        for key, name in _DETAIL_KEYS.items()
    },
}


def _path(field: str, prefix: str) -> str:
    """Where a field was read in the payload, for error sentences (``eventId`` is read at the
    top level in every shape)."""
    if field == "event_id":
        return "eventId"
    return prefix + _PATHS[field] if field in _PATHS else field


def _extract(body: dict[str, Any], reading: _Reading) -> tuple[dict[str, Any], str]:
    """Pick the fields out of whichever shape this is; return them with the prefix of their
    payload paths."""
    shape = _shape(body)
    anomalies = reading.anomalies
    envelope, prefix = (
        (reading.clean(body["attributes"]), "attributes.") if shape is Shape.A else (body, "")
    )
    event_name = _event_name(body, envelope, prefix)
    data = _object(envelope, "data", f"{prefix}data", reading)
    customer = _object(data, "customerIdentifiers", f"{prefix}data.customerIdentifiers", reading)
    instore = _object(customer, "instore", f"{prefix}data.customerIdentifiers.instore", reading)
    cpd_path = f"{prefix}data.customerPartnerProgramDetails"
    cpd = _object(data, "customerPartnerProgramDetails", cpd_path, reading)

    fields: dict[str, Any] = {
        "event_name": event_name,
        "kind": EVENT_KINDS[event_name],
        "shape": shape,
        "org_id": envelope.get("orgId"),
        "occurred_at_ms": envelope.get("createdAt"),
        "customer_id": customer.get("customerId"),
        "partner_program_id": data.get("partnerProgramId"),
        "loyalty_program_id": data.get("loyaltyProgramId"),
        "partner_program_name": data.get("partnerProgramName"),
        "partner_program_type": data.get("partnerProgramType"),
        "update_type": data.get("updateType"),
        "details": {name: cpd[key] for key, name in _DETAIL_KEYS.items() if key in cpd},
        "expiry_instants": _expiry_instants(cpd, anomalies),
        "scheduled_expiry_date": data.get("scheduledExpiryDate"),
        "event_id": body.get("eventId", envelope.get("eventId")),
        "ref_id": envelope.get("refId"),
        "api_request_id": envelope.get("apiRequestId"),
        "identifiers": _identifiers(instore),
    }
    required = ["org_id", "occurred_at_ms", "customer_id", "partner_program_id"]
    required += ["loyalty_program_id"]
    if fields["kind"] is Kind.REMINDED:
        required.append("scheduled_expiry_date")
    missing = [_path(name, prefix) for name in required if fields[name] in (None, "")]
    if missing:
        raise InvalidNotificationError(
            Reason.MISSING_FIELD,
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} absent or empty",
        )
    if event_name == RENEWAL_JOB:
        sent = fields["update_type"]
        if isinstance(sent, str) and sent and sent.upper() != "RENEW":
            anomalies.append("RENEWAL_JOB_UPDATE_TYPE_OVERRIDDEN")
        fields["update_type"] = "RENEW"
    fields["delivered_at_ms"] = _delivery_time(body.get("timeStamp"), anomalies)
    entity = data.get("entityInformation")
    entity_id = reading.clean(entity).get("entityId") if isinstance(entity, dict) else None
    if entity_id not in (None, "") and not _same_number(entity_id, fields["customer_id"]):
        anomalies.append("ENTITY_ID_MISMATCH")
    fields["anomalies"] = tuple(anomalies)
    return fields, prefix


def _expiry_instants(cpd: dict[str, Any], anomalies: list[str]) -> dict[str, int | None]:
    """The ``...InMillis`` instants present. Like the delivery time they never quarantine a
    payload: an unreadable one is noted (``BAD_EXPIRY_MILLIS``) and left out."""
    instants: dict[str, int | None] = {}
    for key, (name, _) in _INSTANT_KEYS.items():
        if key not in cpd:
            continue
        value = cpd[key]
        if value is None or value == "":
            instants[name] = None
            continue
        try:
            millis = _integer(value, minimum=0)
        except PydanticCustomError:
            millis = None
        if millis is None or millis >= _LATEST_INSTANT_MS:
            anomalies.append("BAD_EXPIRY_MILLIS")
        else:
            instants[name] = millis
    return instants


def instant_agrees_with_date(millis: int, day: date) -> bool:
    """True when some UTC offset in use (UTC-12:00 to UTC+14:00) puts the instant on ``day``:
    the instant falls in [day 00:00 UTC-14h, day+1 00:00 UTC+12h)."""
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    return start - _EAST_MS <= millis < start + 86_400_000 + _WEST_MS


def _delivery_time(value: Any, anomalies: list[str]) -> int | None:
    """Shape A's ``timeStamp``: when Capillary delivered the notification. Delivery metadata,
    so an unreadable one is noted, never a reason to quarantine."""
    if value is None:
        return None
    try:
        return _epoch_millis(value)
    except PydanticCustomError:
        anomalies.append("BAD_DELIVERY_TIME")
        return None


def _same_number(left: Any, right: Any) -> bool:
    try:
        return _integer(left, minimum=0) == _integer(right, minimum=0)
    except PydanticCustomError:
        return False


def _identifiers(instore: dict[str, Any]) -> dict[str, str]:
    found = {
        "mobile": instore.get("mobile"),
        "email": instore.get("email"),
        "external_id": instore.get("externalId"),
    }
    identifiers = {
        k: str(v)
        for k, v in found.items()
        if isinstance(v, str | int) and not isinstance(v, bool) and v != ""
    }
    if "mobile" in identifiers:
        identifiers["mobile"] = "".join(identifiers["mobile"].split())
    return identifiers


_ERROR_REASONS: Final = {
    "missing": Reason.MISSING_FIELD,
    "bad_number": Reason.BAD_NUMBER,
    "bad_timestamp": Reason.BAD_TIMESTAMP,
    "bad_date": Reason.BAD_DATE,
    "bad_value": Reason.BAD_VALUE,
}
_PRIORITY: Final = [
    Reason.MISSING_FIELD,
    Reason.BAD_VALUE,
    Reason.BAD_NUMBER,
    Reason.BAD_TIMESTAMP,
    Reason.BAD_DATE,
]


def _invalid(error: ValidationError, prefix: str) -> InvalidNotificationError:
    reasons: list[Reason] = []
    sentences: list[str] = []
    for problem in error.errors(include_url=False):
        field = ".".join(str(part) for part in problem["loc"])
        reasons.append(_ERROR_REASONS.get(problem["type"], Reason.BAD_VALUE))
        sentences.append(f"{_path(field, prefix)}: {problem['msg']}")
    reason = min(reasons, key=_PRIORITY.index)
    return InvalidNotificationError(reason, "; ".join(sentences))


def _with_value_anomalies(notification: Notification) -> Notification:
    """Open sets are kept as sent; an unknown value is an anomaly, never a rejection."""
    found = list(notification.anomalies)
    program_type = notification.partner_program_type
    if program_type is not None and program_type not in KNOWN_PROGRAM_TYPES:
        found.append("UNKNOWN_PROGRAM_TYPE")
    update_type = notification.update_type
    if update_type is not None and update_type not in KNOWN_UPDATE_TYPES:
        found.append("UNKNOWN_UPDATE_TYPE")
    if notification.kind is Kind.UPDATED and update_type is None:
        found.append("UPDATE_TYPE_ABSENT")
    details = notification.details
    for name, date_field in _INSTANT_KEYS.values():
        millis = notification.expiry_instants.present().get(name)
        day = getattr(details, date_field)
        if millis is not None and day is not None and not instant_agrees_with_date(millis, day):
            found.append("DATE_MILLIS_MISMATCH")
    if tuple(found) == notification.anomalies:
        return notification
    return notification.model_copy(update={"anomalies": tuple(found)})
