"""What the doors ask of a ledger. The CLI and the HTTP service call these and `Ledger`'s own
methods; neither reaches past them to the store, the recorder or the mapper.

`Recording` is the one ingest use case both doors use: a batch of payloads through
`Ledger.receive` with the views that stand at the log's head updated in the batch's
transaction, and the log digest's checkpoints extended as the log grows (the CLI at the end
of an ingest; the HTTP service in the background, every `CHECKPOINT_EVERY` events of the log).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from domain.audit import Auditor
from domain.errors import InvalidNotificationError
from domain.ledger import Ledger, Outcome
from domain.notifications import Notification


class Recording:
    """Payloads into one ledger, from one door. ``on_recorded`` hears how many events each
    batch recorded (on the recording thread: it should only count or signal)."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        source: str | None = None,
        on_recorded: Callable[[int], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.source = source
        self.on_recorded = on_recorded

    def record(
        self,
        payloads: Sequence[bytes],
        *,
        parsed: Sequence[Notification | InvalidNotificationError] | None = None,
        sources: Sequence[str | None] | None = None,
    ) -> list[Outcome]:
        """One batch, atomically (see `Ledger.receive`); one outcome per payload, in order."""
        outcomes = self.ledger.receive(
            payloads,
            parsed=parsed,
            sources=self.source if sources is None else sources,
            update_views=True,
        )
        if self.on_recorded is not None:
            self.on_recorded(sum(outcome.status == "recorded" for outcome in outcomes))
        return outcomes


def extend_checkpoints(ledger: Ledger) -> tuple[int, int]:
    """Extend the log digest's stored checkpoints to the log's last position: how many were
    added, and how many events now follow the last one."""
    auditor = Auditor(ledger.store)
    return auditor.checkpoint(), auditor.uncheckpointed()


def auditor(ledger: Ledger) -> Auditor:
    """The ledger's auditor: hash chains, the log digest and its checkpoints."""
    return Auditor(ledger.store)


def last_position(ledger: Ledger) -> int:
    """The position of the last event recorded (0 for an empty ledger)."""
    return int(ledger.recorder.max_notification_id() or 0)


def counts(ledger: Ledger) -> dict[str, int]:
    """How many notifications are recorded (``recorded``) and how many quarantine entries
    are open (``quarantined``)."""
    return ledger.store.counts()


def checkpoints(ledger: Ledger) -> list[dict[str, Any]]:
    """The stored digest checkpoints, oldest first: position, events, digest."""
    return ledger.store.checkpoints()


def quarantined(ledger: Ledger, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    """The quarantine entries (open ones only unless ``include_resolved``), oldest first."""
    return ledger.store.quarantined(include_resolved=include_resolved)


def quarantine_payloads(ledger: Ledger, ids: Sequence[str]) -> dict[str, bytes]:
    """The raw bytes of these quarantine entries, by id."""
    return ledger.store.quarantine_payloads(ids)
