"""Membership snapshots as stored text: the state as a JSON object of named fields.

They are stored in the table ``ledger_heads`` (column ``head``): stored names, kept. A snapshot
written by a release whose `MembershipState` had other fields does not decode (None): the
ledger then loads and folds that membership's events instead, and writes a new snapshot
(release 2's, before the expiry instants, are such snapshots).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Final
from uuid import UUID

from domain.json_bytes import ascii_json
from domain.state import MembershipState, Snapshot, Status

FORMAT: Final = 1
_DATETIMES: Final = frozenset(
    {"linked_at", "delinked_at", "last_reminder_at", "tier_expiry_at", "membership_expiry_at"}
)
_DATES: Final = frozenset({"tier_expiry_date", "membership_expiry_date", "scheduled_expiry_date"})


def encode_snapshot(snapshot: Snapshot) -> str:
    state = {
        name: value.isoformat() if isinstance(value, date) else value
        for name, value in zip(MembershipState._fields, snapshot.state, strict=True)
    }
    return ascii_json(
        {"format": FORMAT, "latest": snapshot.latest_occurrence.isoformat(), "state": state}
    )


def decode_snapshot(membership_id: UUID, version: int, text: str) -> Snapshot | None:
    """The snapshot, or None when it was written in another format."""
    stored = json.loads(text)
    state = stored.get("state", {})
    if stored.get("format") != FORMAT or set(state) != set(MembershipState._fields):
        return None
    values = {name: _decoded(name, value) for name, value in state.items()}
    return Snapshot(
        membership_id,
        version,
        MembershipState(**values),
        datetime.fromisoformat(stored["latest"]),
    )


def _decoded(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _DATETIMES:
        return datetime.fromisoformat(value)
    if name in _DATES:
        return date.fromisoformat(value)
    if name == "status":
        return Status(value)
    return value
