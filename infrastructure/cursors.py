"""Paging cursors of ``expiring``: the same opaque text from the CLI and the HTTP API.

A cursor is the sort key of the last row of a page, as URL-safe base64 JSON; decoding checks
every value, since it reaches SQL as bound parameters.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

ORDER = ("date", "org_id", "customer_id", "partner_program_id", "kind")  # the expiry view's sort
KINDS = ("membership", "tier", "scheduled")
MAX_ID = 2**63 - 1
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class CursorError(ValueError):
    """A cursor this ledger never gave out."""


def encode_cursor(row: dict[str, Any]) -> str:
    """An opaque cursor: the sort key of the last row of an ``expiring`` page."""
    key = json.dumps([row[name] for name in ORDER], separators=(",", ":"))
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, ...]:
    """The sort key in a cursor, checked value by value."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        key = None
    if not isinstance(key, list) or len(key) != len(ORDER):
        raise CursorError("the cursor is not one this ledger gave out")
    for name, value in zip(ORDER, key, strict=True):
        if name == "date":
            valid = isinstance(value, str) and _DATE.fullmatch(value) is not None
        elif name == "kind":
            valid = value in KINDS
        else:
            valid = type(value) is int and 0 <= value <= MAX_ID
        if not valid:
            raise CursorError("the cursor is not one this ledger gave out")
    return tuple(key)
