"""How fresh the views are: a follower that keeps them current, a watcher that waits for them.

- `Follower` runs `Projector.follow` on a thread of each worker process. Only one follower per
  view can run against a database (an advisory lock); the others get `LockHeldError` and try
  again every few seconds, so if the process holding the lock goes away, another takes over.
  A follower whose lock went while it ran (an outage ended its lock session) writes nothing
  until it has taken the lock again; when another worker took it meanwhile, it gets
  `LockHeldError` too and waits its turn like the others.
  A separate ``partner-ledger project --follow`` is just as good: the service then relies on it.
- `ViewWatcher` answers "has view V reached position N?" for read-your-writes. While at least
  one request is waiting it polls the live generations' positions every few milliseconds, one
  poll for all waiters of the process (not the library's 100 ms floor), and wakes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

from domain.errors import LockHeldError, ViewBehindError, first_line
from projections.runner import Projector
from projections.views import VIEWS

Positions = dict[str, int | None]
logger = logging.getLogger("partner_ledger.http")


def live_positions(projector: Projector) -> Positions:
    """Each view's live position; None for a view that has no live generation yet."""
    positions: Positions = {}
    for name, view in VIEWS.items():
        live = projector.store.live(view)
        positions[name] = live.position if live is not None else None
    return positions


class ViewWatcher:
    """Shared, fast polling of view positions while someone waits for one."""

    def __init__(self, read: Callable[[], Positions], *, interval: float = 0.003) -> None:
        self._read = read
        self._interval = interval
        self._positions: Positions = {}
        self._tick = asyncio.Event()
        self._waiters = 0
        self._poller: asyncio.Task[None] | None = None

    async def position(self, view: str) -> int | None:
        """The view's position, from the last poll when that showed it live."""
        if self._positions.get(view) is None:
            self._positions = await asyncio.to_thread(self._read)
        return self._positions.get(view)

    async def wait_for(self, view: str, wanted: int, *, timeout: float) -> int:
        """Return once ``view`` has folded in position ``wanted``, or raise
        `ViewBehindError` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._waiters += 1
        if self._poller is None or self._poller.done():
            self._poller = loop.create_task(self._poll(), name="view-watcher")
        try:
            while True:
                current = self._positions.get(view)
                if current is not None and current >= wanted:
                    return current
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise ViewBehindError(view, current, wanted)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._tick.wait(), remaining)
        finally:
            self._waiters -= 1

    async def _poll(self) -> None:
        while self._waiters > 0:
            try:
                self._positions = await asyncio.to_thread(self._read)
            except Exception as error:  # the database is away: waiters time out, answer 503
                logger.warning("cannot read view positions: %s", type(error).__name__)
                await asyncio.sleep(0.1)
            tick, self._tick = self._tick, asyncio.Event()
            tick.set()
            await asyncio.sleep(self._interval)


class Follower:
    """`Projector.follow` on a daemon thread, retrying while another process holds the lock."""

    def __init__(self, make_projector: Callable[[], Projector], *, retry_seconds: float = 5.0):
        self._make_projector = make_projector
        self._retry_seconds = retry_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="view-follower", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, *, timeout: float = 0.5) -> None:
        """Ask the follower to stop and wait at most ``timeout`` seconds: it is a daemon
        thread, so one stuck in the database never holds the process's exit."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._make_projector().follow(self._stop, on_error=self._report)
            except LockHeldError:
                pass  # another process follows; rely on it, and take over if it goes away
            except Exception as error:
                self._report(error)
            self._stop.wait(self._retry_seconds)

    @staticmethod
    def _report(error: Exception) -> None:
        logger.warning("view follower: %s", first_line(error))
