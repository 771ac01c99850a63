"""Following the log: catch-up repeated whenever the log moves (woken by the database when it
can say so, else polling), under one lock per view, checked before every pass and write."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from domain.errors import LockHeldError, LockLostError, PositionConflictError, RebuildError
from projections.base import RunnerBase
from projections.locks import LockSet
from projections.views import VIEWS


class Following(RunnerBase):
    """The follow part of a projector."""

    def follow(
        self,
        stop: threading.Event,
        *,
        backstop_seconds: float = 1.0,
        poll_seconds: float = 0.02,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """Keep every view current until ``stop`` is set. One follower per view: a second
        one gets `LockHeldError` at once.

        The locks can go while the follower runs (an outage or ``pg_terminate_backend`` ends
        the sessions holding them; someone removes the SQLite lock file), so it checks them
        before every pass and every write. One that lost them writes nothing until it has
        taken them again; if another process took them meanwhile, it raises
        `LockHeldError`: that one follows now."""
        report = on_error or (lambda error: None)
        locks = LockSet(self.storage.locks, [f"follow-{name}" for name in VIEWS])
        locks.take()
        waiter = self.storage.waiter(backstop_seconds=backstop_seconds, poll_seconds=poll_seconds)
        self._stopping = stop
        try:
            with waiter, self._guarded(locks.check):
                while not stop.is_set():
                    if not _still_leading(locks, report, self.storage.transient):
                        stop.wait(1.0)  # the database is away: try again, do not die
                        continue
                    try:
                        self.catch_up()
                    except LockLostError as error:
                        with contextlib.suppress(LockLostError):
                            locks.check()  # its own: `_still_leading` says so, takes them again
                            report(error)  # a rebuild's lock: that rebuild stopped
                        continue
                    except (PositionConflictError, RebuildError, LockHeldError) as error:
                        if not stop.is_set():  # LockHeldError: another process rebuilds
                            report(error)
                    except self.storage.transient as error:
                        # The database is away for a moment: say so and try again. Any other
                        # error is a bug, and surfaces.
                        report(error)
                        stop.wait(1.0)
                    waiter.wait(stop)
        finally:
            self._stopping = None
            locks.release()


def _still_leading(
    locks: LockSet, report: Callable[[Exception], None], transient: tuple[type[Exception], ...]
) -> bool:
    """True while the follower holds its locks. After it lost them: take them again (True),
    or False while the database cannot be reached, or `LockHeldError` when another process
    holds them now."""
    try:
        locks.check()
        return True
    except LockLostError as lost:
        if locks.held:
            report(LockLostError(f"{lost}; not writing until the lock is taken again"))
        locks.release()
    try:
        locks.take()
    except LockHeldError as taken:
        raise LockHeldError(
            f"this follower lost its locks and another process has taken them since ({taken}); "
            "that one follows the log now"
        ) from None
    except transient as error:
        report(error)
        return False
    return True
