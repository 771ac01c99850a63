"""The decode stage: payload bytes to validated, normalized notifications, or the reason not.

Each payload takes the fast path first (`domain.notifications.fast_path`: orjson, the known
shapes, plain values); one it declines (a float, a BOM, an escape, anything invalid) goes to
the full path (the exact reader and the pydantic models), whose numbers stay exact and whose
quarantine reasons and sentences are the ledger's. Both give the same notification for a
payload both can read. The fingerprint is computed here too, so that it is paid for where the
parsing runs (worker processes, for a bulk ingest: `infrastructure.parsing`).
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.errors import InvalidNotificationError
from domain.notifications import Notification, fast_notification, parse_notification


def parse_all(payloads: Sequence[bytes]) -> list[Notification | InvalidNotificationError]:
    """Each payload parsed, or the reason it cannot be recorded; fingerprints computed."""
    results = [_parse(raw) for raw in payloads]
    for result in results:
        if isinstance(result, Notification):
            result.fingerprint  # noqa: B018 - computed here, cached on the object
    return results


def _parse(raw: bytes) -> Notification | InvalidNotificationError:
    notification = fast_notification(raw)
    if notification is not None:
        return notification
    try:
        return parse_notification(raw)
    except InvalidNotificationError as error:
        return error
