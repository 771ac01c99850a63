"""The exact JSON reader: payload bytes to Python values, every number kept as sent.

A number with a fraction or an exponent stays its text (`DecimalNumber`), an integer too long
to be any id stays its digits (`LongNumber`), ``NaN`` and ``Infinity`` are refused: nothing is
rounded before validation can tell whether it is an integer. A byte-order mark is allowed. What
is not JSON is `InvalidNotificationError` with reason ``NOT_JSON`` and one sentence.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from domain.errors import InvalidNotificationError, Reason

# Unpaired surrogates cannot be encoded, and NUL cannot be stored in a PostgreSQL text column.
UNSTORABLE = re.compile("[\ud800-\udfff\x00]")
_MAX_ID: Final = 2**63 - 1
# The largest decimal exponent an id (at most 2^63-1, 19 digits) can have.
_MAX_ID_EXPONENT: Final = 18


class LongNumber(str):
    """A JSON integer too long to be any id; kept as its digits so that validation can name
    the field (Python refuses to convert integers of more than 4,300 digits)."""


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


def read_json(raw: bytes | str) -> tuple[Any, bool]:
    """The JSON value of a payload, and whether it is storable as it is: True when no key or
    string of it can hold a NUL or a lone surrogate. Raises `InvalidNotificationError`."""
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
    return body, _storable(text, decoded=isinstance(raw, bytes))


def _storable(text: str, *, decoded: bool) -> bool:
    """True when no key or string of this JSON text can hold a NUL or a lone surrogate: it
    has no raw NUL and no escape (nearly every payload), and, unless it was decoded from
    UTF-8 (which cannot carry a lone surrogate), no raw surrogate."""
    if "\\u" in text or "\x00" in text:
        return False
    return decoded or UNSTORABLE.search(text) is None


def _parse_int(digits: str) -> int | str:
    return int(digits) if len(digits) <= 64 else LongNumber(digits)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
