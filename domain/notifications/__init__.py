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

Payload key names never leave this package: the rest of the ledger sees `Notification` only.
Its modules, in the order a payload meets them: `exact_json` (bytes to values, numbers exact),
`shapes` (which shape, and the fields picked out of it), `lenient` (the values that are only
noted), `fields` (one validator per kind of value), `model` (the pydantic models and the
fingerprint), `full_path` (any payload, every error with its sentence) and `fast_path` (the
payloads of the known shapes that need nothing of the exact reader, with the same results).
"""

from __future__ import annotations

from domain.notifications.fast_path import fast_notification
from domain.notifications.fields import (
    CODE_LIMIT,
    EMAIL_LIMIT,
    ID_TEXT_LIMIT,
    MOBILE_LIMIT,
    NAME_LIMIT,
    instant_agrees_with_date,
)
from domain.notifications.full_path import parse_notification, parse_object
from domain.notifications.model import (
    EVENT_KINDS,
    KNOWN_PROGRAM_TYPES,
    KNOWN_UPDATE_TYPES,
    RENEWAL_JOB,
    Details,
    ExpiryInstants,
    Identifiers,
    Kind,
    Notification,
    Shape,
)

__all__ = [
    "CODE_LIMIT",
    "EMAIL_LIMIT",
    "EVENT_KINDS",
    "ID_TEXT_LIMIT",
    "KNOWN_PROGRAM_TYPES",
    "KNOWN_UPDATE_TYPES",
    "MOBILE_LIMIT",
    "NAME_LIMIT",
    "RENEWAL_JOB",
    "Details",
    "ExpiryInstants",
    "Identifiers",
    "Kind",
    "Notification",
    "Shape",
    "fast_notification",
    "instant_agrees_with_date",
    "parse_notification",
    "parse_object",
]
