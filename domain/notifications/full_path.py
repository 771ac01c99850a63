"""The full path: any payload at all, through the exact JSON reader and the pydantic models.

It accepts every payload the ledger can record and gives every other one its quarantine
reason and sentence; the fast path (`domain.notifications.fast_path`) must agree with it.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError

from domain.errors import InvalidNotificationError, Reason
from domain.notifications.exact_json import read_json
from domain.notifications.fields import instant_agrees_with_date
from domain.notifications.lenient import INSTANT_KEYS
from domain.notifications.model import (
    KNOWN_PROGRAM_TYPES,
    KNOWN_UPDATE_TYPES,
    Kind,
    Notification,
)
from domain.notifications.shapes import Reading, extract, json_type, payload_path


def parse_notification(raw: bytes | str) -> Notification:
    """Parse and normalize one payload, or raise `InvalidNotificationError`."""
    body, storable = read_json(raw)
    return parse_object(body, storable=storable)


def parse_object(body: Any, *, storable: bool = False) -> Notification:
    """Normalize an already decoded JSON value, or raise `InvalidNotificationError`.
    ``storable``: the caller knows that no key or string holds a NUL or a lone surrogate."""
    if not isinstance(body, dict):
        raise InvalidNotificationError(
            Reason.NOT_AN_OBJECT, f"the body is a JSON {json_type(body)}, not an object"
        )
    reading = Reading(check_text=not storable)
    body = reading.clean(body)
    fields, prefix = extract(body, reading)
    try:
        notification = Notification.model_validate(fields)
    except ValidationError as error:
        raise _invalid(error, prefix) from None
    return with_value_anomalies(notification)


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
        sentences.append(f"{payload_path(field, prefix)}: {problem['msg']}")
    reason = min(reasons, key=_PRIORITY.index)
    return InvalidNotificationError(reason, "; ".join(sentences))


def with_value_anomalies(notification: Notification) -> Notification:
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
    instants = notification.expiry_instants.present()
    for name, date_field in INSTANT_KEYS.values():
        millis = instants.get(name)
        day = getattr(details, date_field)
        if millis is not None and day is not None and not instant_agrees_with_date(millis, day):
            found.append("DATE_MILLIS_MISMATCH")
    if tuple(found) == notification.anomalies:
        return notification
    return notification.model_copy(update={"anomalies": tuple(found)})
