"""What the runner's parts share (`projections.runner.Projector` is made of them): the ledger's
view storage, and the lock checks that guard every write to a view."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator

from domain.ledger import Ledger
from projections.log import EventLog
from projections.storage import ViewStorage
from projections.store import Generation, ViewStore
from projections.views import VIEWS, View

Progress = Callable[[int], None]


def _no_check() -> None:
    return None


class RunnerBase:
    """The state of a projector; `_catch_up` and `catch_up` are the catch-up part's."""

    def __init__(
        self, ledger: Ledger, *, storage: ViewStorage, batch_size: int, rebuild_wait_seconds: float
    ) -> None:
        self.ledger = ledger
        self.storage = storage
        self.store: ViewStore = storage.store
        self.log: EventLog = storage.log
        self.batch_size = batch_size
        self.rebuild_wait_seconds = rebuild_wait_seconds
        # Called before every write to a view: raises `LockLostError` when a lock that
        # guards the writing is gone (see `_guarded`).
        self._check_locks: Callable[[], None] = _no_check
        self._stopping: threading.Event | None = None  # a follower's stop: ends lock waits

    def last_position(self) -> int:
        """The position of the last event in the log (0 for an empty log)."""
        return self.log.last_position()

    def catch_up(self, views: Iterable[View] = VIEWS.values()) -> dict[str, int]:
        raise NotImplementedError

    def _catch_up(
        self, view: View, generation: Generation, *, strict: bool, progress: Progress | None = None
    ) -> int:
        raise NotImplementedError

    def _generation(self, view: View, number: int) -> Generation | None:
        return next((g for g in self.store.generations(view) if g.number == number), None)

    @contextlib.contextmanager
    def _guarded(self, check: Callable[[], None]) -> Iterator[None]:
        """Within the block, every write to a view first runs ``check`` too."""
        outer = self._check_locks

        def both() -> None:
            outer()
            check()

        self._check_locks = both
        try:
            yield
        finally:
            self._check_locks = outer
