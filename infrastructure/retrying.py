"""The edge's policies for the ledger's writes: its clock, and attempts against conflicts.

A batch that loses a race to another writer (the library's ``IntegrityError``: another writer
committed the same notifications, or appended to the same memberships, first) is tried again
after a jittered back-off, so that writers racing on the same rows fall out of step. Under
PostgreSQL the writers take ``WRITER_LOCK`` for the whole batch, sleep included, so there the
back-off mostly paces a writer racing a release that keeps no heads, or a ``forget``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, TypeVar

from eventsourcing.persistence import IntegrityError

from domain.ledger import ConcurrencyError
from infrastructure.storage_errors import LIBRARY_TRANSIENT_ERRORS, unavailable

T = TypeVar("T")
MAX_ATTEMPTS: Final = 20


def system_clock() -> datetime:
    """Recording times: UTC now, as the library's ``create_timestamp``."""
    return datetime.now(tz=UTC)


def now_us() -> int:
    """The time now in epoch microseconds, as the ledger's tables keep times."""
    return time.time_ns() // 1000


class ConflictAttempts:
    """`domain.ledger.Attempts`: up to ``MAX_ATTEMPTS`` attempts, with jittered back-off."""

    def __init__(self, *, attempts: int = MAX_ATTEMPTS) -> None:
        self.attempts = attempts
        self.conflicts = 0

    def __call__(self, attempt: Callable[[int], T]) -> T:
        for number in range(self.attempts):
            try:
                return attempt(number)
            except IntegrityError:
                self.conflicts += 1
                time.sleep(random.uniform(0, min(0.2, 0.005 * 2**number)))
            except LIBRARY_TRANSIENT_ERRORS as error:
                raise unavailable("the event store is unavailable", error) from None
        raise ConcurrencyError(f"gave up after {self.attempts} concurrent-write conflicts")
