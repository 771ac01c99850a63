"""JSON text byte for byte as the ``json`` module writes it, by orjson where the two agree.

`LibraryJSON` writes what the library's `JSONTranscoder` (compact, ``ensure_ascii=False``, the
``{"_type_": ..., "_data_": ...}`` form for registered types) writes: stored events.
`ascii_json` writes what ``json.dumps(obj, separators=(",", ":"))`` writes: snapshots, and
(keys sorted) the identifiers the vault seals. orjson agrees with ``json`` on exact ``str``
(escapes, UTF-8), ``int`` within 64 bits, ``bool``, ``None``, and ``dict`` with ``str`` keys and
``list`` (order kept), and refuses the rest of those types (a bigger int, another key type, a lone
surrogate). It differs on floats (``1e+16``, ``NaN``), UUIDs and enums, which it writes itself:
so a value holding anything but the exact types above (and, for `LibraryJSON`, a datetime or a
date, transcoded here as the library would) takes the ``json`` module's path, and so does any
value orjson refuses. The permanent proof is ``tests/unit/test_json_bytes.py``.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Final

import orjson
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Transcoder

from domain.library_settings import DateAsISO

_PLAIN: Final = frozenset({str, int, bool, type(None)})


class _NotPlainError(Exception):
    """A value the fast path does not place: the library's transcoder writes it."""


class LibraryJSON:
    """The transcoder's bytes for a value: orjson on the value with its datetimes and dates
    transcoded, or the transcoder itself for what that cannot prove identical (or when the
    transcoder is not the library's own with its ISO datetimes and our ISO dates)."""

    def __init__(self, transcoder: Transcoder) -> None:
        self.transcoder = transcoder
        self.names: dict[type, str] = {}
        if type(transcoder) is JSONTranscoder:
            registered = transcoder.types
            if type(registered.get(datetime)) is DatetimeAsISO:
                self.names[datetime] = registered[datetime].name
            if type(registered.get(date)) is DateAsISO:
                self.names[date] = registered[date].name
        self.fast = type(transcoder) is JSONTranscoder

    def encode(self, obj: Any) -> bytes:
        fast = self.fast_bytes(obj)
        return self.transcoder.encode(obj) if fast is None else fast

    def fast_bytes(self, obj: Any) -> bytes | None:
        """The transcoder's bytes by orjson, or None where that is not proven identical."""
        if not self.fast:
            return None
        try:
            return orjson.dumps(self._plain(obj))
        except (_NotPlainError, orjson.JSONEncodeError, RecursionError):
            return None

    def _plain(self, value: Any) -> Any:
        """``value`` with its datetimes and dates in the transcoder's form; containers of
        plain values only are kept as they are."""
        kind = type(value)
        if kind in _PLAIN:
            return value
        if kind is dict:
            if set(map(type, value.values())) <= _PLAIN:
                return value
            return {
                key: item if type(item) in _PLAIN else self._plain(item)
                for key, item in value.items()
            }
        if kind is list or kind is tuple:
            if set(map(type, value)) <= _PLAIN:
                return value
            return [item if type(item) in _PLAIN else self._plain(item) for item in value]
        name = self.names.get(kind)
        if name is None:
            raise _NotPlainError(kind)
        return {"_type_": name, "_data_": value.isoformat()}


def ascii_json(obj: dict[str, Any], *, sort_keys: bool = False) -> str:
    """``json.dumps(obj, separators=(",", ":"), sort_keys=sort_keys)``: orjson's text when
    ``obj`` holds only plain values (and enums of ``str``) and that text is ASCII, else the
    ``json`` module's. (orjson sorts keys by their UTF-8 bytes: for the strings it accepts, the
    order of their code points, which is how Python sorts them.)"""
    try:
        text = orjson.dumps(_ascii_plain(obj), option=orjson.OPT_SORT_KEYS if sort_keys else None)
    except (_NotPlainError, orjson.JSONEncodeError, RecursionError):
        return json.dumps(obj, separators=(",", ":"), sort_keys=sort_keys)
    # json escapes (ensure_ascii) every character beyond "~" that orjson writes as it is
    if text.isascii() and b"\x7f" not in text:
        return text.decode()
    return json.dumps(obj, separators=(",", ":"), sort_keys=sort_keys)


def _ascii_plain(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {
            key: item if type(item) in _PLAIN else _ascii_plain(item) for key, item in value.items()
        }
    if isinstance(value, str):
        # a str enum (or another str subclass): json writes the str itself
        return str.__str__(value)
    raise _NotPlainError(kind)
