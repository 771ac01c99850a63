"""The fast path: payloads that need nothing of the exact reader, decoded with orjson, with
the same results as the full path.

It reads the body with orjson instead of the exact reader (whose number hooks run in Python
for every number) and then does what the full path does: the same shape extraction and the
same models. It declines (returns None) whatever it cannot place exactly, and the caller takes
the full path, which gives every error its reason and sentence:

- a byte-order mark, or any ``\\u`` escape (a NUL or a lone surrogate needs the storable
  check); a body nested deep enough that the exact reader could run out of stack;
- anything orjson refuses (not UTF-8, not JSON, NaN) or reads as a float: a fraction, an
  exponent or an integer beyond 64 bits, which the exact reader keeps exact, in any object the
  extraction opens; two keys of one object that differ only in whitespace;
- a body that is not an object, and any payload with anything invalid at all.

The models are validated, not built with `model_construct`: measured on generated payloads,
pydantic's validation (compiled, calling the same before-validators) costs less CPU than
building the four models field by field in Python, and it leaves no second way to build them.
"""

from __future__ import annotations

import codecs
from typing import Any, Final

import orjson
from pydantic import ValidationError

from domain.errors import InvalidNotificationError
from domain.notifications.full_path import with_value_anomalies
from domain.notifications.model import Notification
from domain.notifications.shapes import Reading, extract

# Brackets of any kind, nested or not (those in strings too): well below the exact reader's
# recursion limit (about 1,000 levels less the caller's stack); the seed's raw event-log
# samples have 58.
_MAX_BRACKETS: Final = 256


class _DeclinedError(Exception):
    """The fast path cannot place this payload exactly."""


class _PlainReading(Reading):
    """A reading that declines an object holding a float, or two keys that differ only in
    whitespace (the full path notes which one it kept)."""

    def clean(self, value: dict[str, Any]) -> dict[str, Any]:
        if float in set(map(type, value.values())):
            raise _DeclinedError
        stripped = {
            key.strip(): item.strip() if type(item) is str else item for key, item in value.items()
        }
        if len(stripped) != len(value):
            raise _DeclinedError
        return stripped


def fast_notification(raw: bytes) -> Notification | None:
    """The notification of one payload, or None when the full path must read it."""
    if raw.startswith(codecs.BOM_UTF8) or b"\\u" in raw:
        return None
    if raw.count(b"{") + raw.count(b"[") > _MAX_BRACKETS:
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(body) is not dict:
        return None
    reading = _PlainReading(check_text=False)
    try:
        fields, _ = extract(reading.clean(body), reading)
        notification = Notification.model_validate(fields)
    except (_DeclinedError, InvalidNotificationError, ValidationError):
        return None
    return with_value_anomalies(notification)
