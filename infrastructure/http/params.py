"""Query and path parameters of the read endpoints: ids, moments, pagination cursors.

Everything here reaches SQL as a bound parameter, so each value is checked for type and range
first: a bad value is a 4xx, never a database error.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import HTTPException, Path, Query

from infrastructure.moments import parse_moment
from projections.views import EXPIRY

MAX_ID = 2**63 - 1
KINDS = ("membership", "tier", "scheduled")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Id = Annotated[int, Path(ge=0, le=MAX_ID)]
OptionalId = Annotated[int | None, Query(ge=0, le=MAX_ID)]
MinPosition = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_ID,
        description="Wait until the view holds this position (read your writes): the "
        "position a POST answered",
    ),
]
Moment = Annotated[
    str | None,
    Query(
        pattern=r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?$",
        description="ISO-8601 time (UTC without an offset); a bare date means its last moment",
    ),
]


def moment(text: str | None, name: str) -> datetime | None:
    """A moment as the CLI reads ``--as-of``: ISO-8601, UTC when no offset is given; a bare
    date is the last microsecond of that day."""
    if text is None:
        return None
    try:
        return parse_moment(text, end_of_day=True)
    except ValueError as error:
        raise HTTPException(422, f"{name} {error}") from None


def encode_cursor(row: dict[str, Any]) -> str:
    """An opaque cursor: the sort key of the last row of an ``expiring`` page."""
    key = json.dumps([row[name] for name in EXPIRY.order_by], separators=(",", ":"))
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, ...]:
    """The sort key in a cursor, checked value by value."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        key = None
    if not isinstance(key, list) or len(key) != len(EXPIRY.order_by):
        raise HTTPException(400, "the cursor is not one this service gave out")
    for name, value in zip(EXPIRY.order_by, key, strict=True):
        if name == "date":
            valid = isinstance(value, str) and _DATE.fullmatch(value) is not None
        elif name == "kind":
            valid = value in KINDS
        else:
            valid = type(value) is int and 0 <= value <= MAX_ID
        if not valid:
            raise HTTPException(400, "the cursor is not one this service gave out")
    return tuple(key)
