"""Records as the doors export them: memberships (the export's fields) and quarantine entries,
JSON-ready values."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from domain.state import MembershipState

# The export's keys are the state's fields, in their order: one list, kept by MembershipState.
EXPORT_FIELDS: tuple[str, ...] = MembershipState._fields


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def membership_record(state: MembershipState) -> dict[str, Any]:
    """A membership as exported: exactly the export keys, JSON-ready."""
    return {name: jsonable(getattr(state, name)) for name in EXPORT_FIELDS}


def quarantine_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A quarantine entry as both doors show it (``quarantine list --json``, ``/quarantine``):
    its id, reason, sentence, receipt times and count, resolution and source."""

    def moment(us: int | None) -> str | None:
        return None if us is None else iso(datetime.fromtimestamp(us / 1e6, tz=UTC))

    return {
        "id": row["id"],
        "reason": row["reason"],
        "detail": row["detail"],
        "received_at": moment(row["received_at_us"]),
        "last_received_at": moment(row["last_received_at_us"]),
        "times_received": row["times_received"],
        "resolved_at": moment(row["resolved_at_us"]),
        "resolution": row["resolution"],
        "source": row.get("source"),
    }
