"""Moments as users write them, for both doors (CLI flags and HTTP query parameters)."""

from __future__ import annotations

from datetime import UTC, date, datetime


def parse_moment(text: str, *, end_of_day: bool) -> datetime:
    """An ISO-8601 time (UTC when no offset is given). A bare date is the start of that day,
    or with ``end_of_day`` its last microsecond (for --to, --as-of, --as-known-at).
    Raises ValueError with a sentence naming the text."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(
                day, datetime.max.time() if end_of_day else datetime.min.time()
            )
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 date or time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
