"""The field validators: one plain function per kind of value a notification carries.

Each takes a value as decoded from JSON and returns it normalized, or raises pydantic's
`PydanticCustomError` with a stable type (``bad_number``, ``bad_timestamp``, ``bad_date``,
``bad_value``) and a sentence naming the value. The models (`domain.notifications.model`) call
them as before-validators; the fast path (`domain.notifications.fast`) calls the same functions
directly, so both paths normalize every value the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, Final

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from domain.notifications.exact_json import DecimalNumber

# createdAt must fall in [2000-01-01, 2100-01-01): the raw event-log samples carry
# placeholders such as 3563, which are integers but not times anyone could mean.
_EARLIEST_MS: Final = 946_684_800_000
_LATEST_MS: Final = 4_102_444_800_000
# An expiry instant may lie far ahead (Capillary's open-ended "link + 100 years"): any time
# from 1970 up to the end of year 9999 reads.
LATEST_INSTANT_MS: Final = 253_402_300_800_000
# The UTC offsets in use anywhere (UTC-12:00 to UTC+14:00): an expiry instant agrees with its
# date string when some offset puts it on that calendar date.
_WEST_MS: Final = 12 * 3_600_000
_EAST_MS: Final = 14 * 3_600_000
MAX_ID: Final = 2**63 - 1
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


def shown(value: Any) -> str:
    """A value as an error sentence shows it: its repr, cut at 60 characters."""
    if isinstance(value, int) and value.bit_length() > 256:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def integer(value: Any, *, minimum: int) -> int:
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
            "bad_number", "{value} is not an integer", {"value": shown(value)}
        )
    if not minimum <= number <= MAX_ID:
        raise PydanticCustomError(
            "bad_number",
            "{value} is out of range (must be {minimum} to 2^63-1)",
            {"value": shown(value), "minimum": minimum},
        )
    return number


def identifier(value: Any) -> int:
    return integer(value, minimum=1)


def tier_number(value: Any) -> int | None:
    return None if value is None else integer(value, minimum=0)


def epoch_millis(value: Any) -> int:
    try:
        millis = integer(value, minimum=0)
    except PydanticCustomError:
        raise PydanticCustomError(
            "bad_timestamp", "{value} is not epoch milliseconds", {"value": shown(value)}
        ) from None
    if not _EARLIEST_MS <= millis < _LATEST_MS:
        raise PydanticCustomError(
            "bad_timestamp",
            "{value} is not a plausible epoch-milliseconds time (2000 to 2100)",
            {"value": shown(value)},
        )
    return millis


def calendar_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    match = _DATE.fullmatch(value) if isinstance(value, str) else None
    try:
        if match is None:
            raise ValueError
        return date.fromisoformat(match.group(1))
    except ValueError:
        raise PydanticCustomError(
            "bad_date", "{value} is not a YYYY-MM-DD date", {"value": shown(value)}
        ) from None


def bounded(limit: int) -> Callable[[Any], str | None]:
    def text(value: Any) -> str | None:
        checked = _text(value)
        if checked is not None and len(checked) > limit:
            raise PydanticCustomError(
                "bad_value",
                "{value} is {length} characters long, over the limit of {limit}",
                {"value": shown(checked), "length": len(checked), "limit": limit},
            )
        return checked

    return text


def bounded_upper(limit: int) -> Callable[[Any], str | None]:
    within = bounded(limit)

    def text(value: Any) -> str | None:
        checked = within(value)
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
    raise PydanticCustomError("bad_value", "{value} is not text", {"value": shown(value)})


def instant_agrees_with_date(millis: int, day: date) -> bool:
    """True when some UTC offset in use (UTC-12:00 to UTC+14:00) puts the instant on ``day``:
    the instant falls in [day 00:00 UTC-14h, day+1 00:00 UTC+12h)."""
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    return start - _EAST_MS <= millis < start + 86_400_000 + _WEST_MS


Identifier = Annotated[int, BeforeValidator(identifier)]
EpochMillis = Annotated[int, BeforeValidator(epoch_millis)]
TierNumber = Annotated[int | None, BeforeValidator(tier_number)]
CalendarDate = Annotated[date | None, BeforeValidator(calendar_date)]
IdText = Annotated[str | None, BeforeValidator(bounded(ID_TEXT_LIMIT))]
NameText = Annotated[str | None, BeforeValidator(bounded(NAME_LIMIT))]
CodeText = Annotated[str | None, BeforeValidator(bounded_upper(CODE_LIMIT))]
MobileText = Annotated[str | None, BeforeValidator(bounded(MOBILE_LIMIT))]
EmailText = Annotated[str | None, BeforeValidator(bounded(EMAIL_LIMIT))]
