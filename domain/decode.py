"""The decode stage: payload bytes to validated, normalized notifications, or the reason not.

Bytes are decoded and validated by the exact parser (`domain.notifications`), whose numbers
stay exact and whose quarantine reasons and sentences are the ledger's; the fingerprint is
computed here too, so that it is paid for where the parsing runs (a worker process, for a bulk
ingest: `infrastructure.parsing`).
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.errors import InvalidNotificationError
from domain.notifications import Notification, parse_notification


def parse_all(payloads: Sequence[bytes]) -> list[Notification | InvalidNotificationError]:
    """Each payload parsed, or the reason it cannot be recorded; fingerprints computed."""
    results = [_parse(raw) for raw in payloads]
    for result in results:
        if isinstance(result, Notification):
            result.fingerprint  # noqa: B018 - computed here, cached on the object
    return results


def _parse(raw: bytes) -> Notification | InvalidNotificationError:
    try:
        return parse_notification(raw)
    except InvalidNotificationError as error:
        return error
