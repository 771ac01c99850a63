"""The fast path: payloads that need nothing of the exact reader, decoded with orjson and built
without pydantic's validation, with the same results as the full path.

It reads the body with orjson and runs the full path's own shape extraction and the models'
own before-validators on plain values, then builds the models as `model_construct` would (the
fields set are those validation sets, so ``Details.present()`` and the fingerprint agree). It
declines (returns None) whatever it cannot place exactly, and the caller takes the full path,
which gives every error its reason and sentence:

- a byte-order mark, or any ``\\u`` escape (a NUL or a lone surrogate needs the storable
  check); a body nested deep enough that the exact reader could run out of stack;
- anything orjson refuses (not UTF-8, not JSON, NaN) or reads as a float: a fraction, an
  exponent or an integer beyond 64 bits, which the exact reader keeps exact, in any object the
  extraction opens; two keys of one object that differ only in whitespace;
- a body that is not an object, and any payload with anything invalid at all.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Any, Final, TypeVar

import orjson
from pydantic import BaseModel, BeforeValidator
from pydantic_core import PydanticCustomError

from domain.errors import InvalidNotificationError
from domain.notifications.full_path import with_value_anomalies
from domain.notifications.model import Details, ExpiryInstants, Identifiers, Notification
from domain.notifications.shapes import Reading, extract

# Brackets of any kind, nested or not (those in strings too): well below the exact reader's
# recursion limit (about 1,000 levels less the caller's stack); the seed's raw event-log
# samples have 58.
_MAX_BRACKETS: Final = 256
_Model = TypeVar("_Model", bound=BaseModel)


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


def before_validators(model: type[BaseModel]) -> dict[str, Callable[..., Any]]:
    """Each field's before-validator: the functions pydantic runs for this model."""
    return {
        name: item.func
        for name, field in model.model_fields.items()
        for item in field.metadata
        if isinstance(item, BeforeValidator)
    }


_NOTIFICATION_CHECKS: Final = before_validators(Notification)
_DETAIL_CHECKS: Final = before_validators(Details)
_IDENTIFIER_CHECKS: Final = before_validators(Identifiers)
# Fields that extraction already gives exactly typed: a str, members of Kind and Shape, an int
# or None, a tuple of str; and the three nested models, built below.
PLAIN_FIELDS: Final = frozenset({"event_name", "kind", "shape", "delivered_at_ms", "anomalies"})
NESTED_FIELDS: Final = frozenset({"details", "expiry_instants", "identifiers"})


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
        return with_value_anomalies(_built(fields))
    except (_DeclinedError, InvalidNotificationError, PydanticCustomError):
        return None


def _built(fields: dict[str, Any]) -> Notification:
    values = {}
    for name, value in fields.items():
        check = _NOTIFICATION_CHECKS.get(name)
        values[name] = value if check is None else check(value)
    details = fields["details"]
    values["details"] = _constructed(
        Details, {name: _DETAIL_CHECKS[name](value) for name, value in details.items()}
    )
    values["expiry_instants"] = _constructed(ExpiryInstants, fields["expiry_instants"])
    identifiers = fields["identifiers"]
    values["identifiers"] = _constructed(
        Identifiers, {name: _IDENTIFIER_CHECKS[name](value) for name, value in identifiers.items()}
    )
    return _constructed(Notification, values)


def _constructed(model: type[_Model], values: dict[str, Any]) -> _Model:
    """``model.model_construct(**values)`` for these models (no aliases, no private attributes,
    no post-init, extra fields forbidden, no default factories), in a fraction of its time: the
    fields named are the fields set, the others take their defaults, in field order."""
    instance = model.__new__(model)
    complete = _DEFAULTS[model].copy()
    complete.update(values)
    _set(instance, "__dict__", complete)
    _set(instance, "__pydantic_fields_set__", set(values))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


_set = object.__setattr__  # the models are frozen: their own __setattr__ refuses
_DEFAULTS: Final[dict[type[BaseModel], dict[str, Any]]] = {
    model: {name: field.default for name, field in model.model_fields.items()}
    for model in (Notification, Details, ExpiryInstants, Identifiers)
}
