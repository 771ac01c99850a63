"""Query and path parameters of the read endpoints: ids, moments, pagination cursors.

Everything here reaches SQL as a bound parameter, so each value is checked for type and range
first: a bad value is a 4xx, never a database error. Moments and days are read exactly as the
CLI reads them (``infrastructure.moments``), and a query parameter an endpoint does not take is
a 422 naming it, not silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import HTTPException, Path, Query, Request

from infrastructure import cursors
from infrastructure.moments import FORMS, parse_day, parse_moment

MAX_ID = cursors.MAX_ID
KINDS = cursors.KINDS

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
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
    Query(max_length=40, description=f"{FORMS[0].upper()}{FORMS[1:]}; a date means its end"),
]
DAY = "The first or last day of the window: " + FORMS


def moment(text: str | None, name: str) -> datetime | None:
    """A moment as the CLI reads ``--as-of``; a whole day is its last microsecond."""
    if text is None:
        return None
    try:
        return parse_moment(text, end_of_day=True)
    except ValueError as error:
        raise HTTPException(422, f"{name}: {error}") from None


def day(text: str | None, name: str) -> date | None:
    """A calendar day as the CLI reads ``expiring --from``."""
    if text is None:
        return None
    try:
        return parse_day(text)
    except ValueError as error:
        raise HTTPException(422, f"{name}: {error}") from None


def encode_cursor(row: dict[str, Any]) -> str:
    """An opaque cursor: the sort key of the last row of an ``expiring`` page."""
    return cursors.encode_cursor(row)


def decode_cursor(cursor: str) -> tuple[Any, ...]:
    """The sort key in a cursor, checked value by value."""
    try:
        return cursors.decode_cursor(cursor)
    except cursors.CursorError:
        raise HTTPException(400, "the cursor is not one this service gave out") from None


async def no_unknown_parameters(request: Request) -> None:
    """A 422 naming every query parameter the endpoint does not take (``within=30d`` on
    /expiring used to be ignored, answering everything)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = set(_query_names(dependant))
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        names = ", ".join(unknown)
        takes = ", ".join(sorted(known)) or "none"
        raise HTTPException(
            422,
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} {names} "
            f"(this endpoint takes: {takes})",
        )


def _query_names(dependant: Any) -> Iterator[str]:
    """The query parameters of an endpoint and of every dependency it has."""
    for param in dependant.query_params:
        yield param.alias
    for dependency in dependant.dependencies:
        yield from _query_names(dependency)
