"""Recording a batch whatever the store does: tried again while it loses races to other
writers, split in halves while the store refuses its data.

Duplicate detection reads the inbox first and relies on its unique indexes at commit time; a
concurrent writer that wins the race turns our commit into an ``IntegrityError``, and the whole
batch is tried again from the top (optimistic concurrency), this time seeing the other writer's
rows. How often, and how long to wait between attempts, is the injected `Attempts` policy's
business (`infrastructure.retrying`), not the domain's.

When the store refuses a batch's data (`StoreRefusedError`: a data exception or a limit, which
no retry can cure), the batch is split in halves, each recorded on its own, until the payload
the store refuses is alone: that one is quarantined as ``STORE_REFUSED`` and the others commit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

from domain.batch import Pipeline, record_batch
from domain.errors import (
    InvalidNotificationError,
    Reason,
    StorageUnavailableError,
    StoreRefusedError,
)
from domain.notifications import Notification
from domain.rows import Outcome

T = TypeVar("T")
# After this many conflicts, stop trusting snapshots: only a snapshot behind its events
# (appended by a release that kept none) keeps conflicting; whole histories are read instead.
TRUST_SNAPSHOTS_ATTEMPTS: Final = 5


class Attempts(Protocol):
    """Runs ``attempt(n)`` for n = 0, 1, ... while it loses races to other writers (the
    library's ``IntegrityError``); counts those conflicts."""

    conflicts: int

    def __call__(self, attempt: Callable[[int], T]) -> T: ...


@dataclass(frozen=True)
class Batch:
    """Payloads recorded together: their parse results, when they were received, (for a
    replay) the quarantine entry each one resolves, whether the views that stand at the
    log's head move with it (`domain.batch.record_batch`), and where each one came from."""

    payloads: Sequence[bytes]
    parsed: Sequence[Notification | InvalidNotificationError]
    received_at_us: int
    resolving: Sequence[str] | None = None
    update_views: bool = False
    sources: Sequence[str | None] | None = None  # where each came from, for the quarantine

    def halves(self) -> list[Batch]:
        middle = len(self.payloads) // 2
        return [
            Batch(
                self.payloads[half],
                self.parsed[half],
                self.received_at_us,
                None if self.resolving is None else self.resolving[half],
                self.update_views,
                None if self.sources is None else self.sources[half],
            )
            for half in (slice(0, middle), slice(middle, None))
        ]


@dataclass(frozen=True)
class BatchWriter:
    """Records batches through ``pipeline``, each tried under ``attempts``."""

    pipeline: Pipeline
    attempts: Attempts

    def record(self, batch: Batch) -> list[Outcome]:
        """Record the batch; if the store refuses its data, record each half on its own
        (bisection), and quarantine a payload that the store refuses alone."""
        try:
            return self._attempt(batch)
        except StoreRefusedError as refusal:
            if len(batch.payloads) > 1:
                return [outcome for half in batch.halves() for outcome in self.record(half)]
            refused = InvalidNotificationError(
                Reason.STORE_REFUSED, f"the database refused to store it: {refusal}"
            )
            try:
                return self._attempt(dataclasses.replace(batch, parsed=[refused]))
            except StoreRefusedError as again:
                raise StorageUnavailableError(
                    f"the database refused a payload even as a quarantine entry: {again}"
                ) from None

    def _attempt(self, batch: Batch) -> list[Outcome]:
        """The batch in one transaction, tried again while it loses races to other writers
        (the next attempt sees their rows and snapshots)."""
        return self.attempts(
            lambda attempt: record_batch(
                self.pipeline,
                batch.payloads,
                batch.parsed,
                batch.received_at_us,
                batch.resolving,
                use_snapshots=attempt < TRUST_SNAPSHOTS_ATTEMPTS,
                update_views=batch.update_views,
                sources=batch.sources,
            )
        )
