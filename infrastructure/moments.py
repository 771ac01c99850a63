"""Moments as users write them, for both doors (CLI flags and HTTP query parameters).

Every form of a day means the same day: ``2023-05-12``, ``20230512`` (and ISO week dates).
Where a whole day stands for a moment, it is the day's first microsecond for the start of a
window (``--from``) and its last for an end (``--to``, ``--as-of``, ``--as-known-at``).
A number of 11 or more digits is epoch milliseconds, Capillary's own unit.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

FORMS = (
    "a date (2023-05-12 or 20230512, the whole day), an ISO-8601 time "
    "(2023-05-12T06:06:45Z; UTC when no offset is given), or epoch milliseconds "
    "(1683871605603)"
)
_EPOCH_DIGITS = 11  # fewer digits would be a date (8) or ambiguous epoch seconds (9-10)


def parse_moment(text: str, *, end_of_day: bool) -> datetime:
    """An aware datetime for TEXT in any of the FORMS. A whole day is its first moment, or
    with ``end_of_day`` its last microsecond. Raises ValueError with a sentence naming TEXT."""
    text = text.strip()
    if text.isdigit() and len(text) >= _EPOCH_DIGITS:
        try:
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{text!r} is beyond the epoch milliseconds a clock holds") from None
    day = _day(text)
    if day is not None:
        return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not {FORMS}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_day(text: str) -> date:
    """A calendar day in any of the FORMS (a time or epoch milliseconds: its UTC day)."""
    return parse_moment(text, end_of_day=False).astimezone(UTC).date()


def _day(text: str) -> date | None:
    if "T" in text or " " in text or ":" in text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
