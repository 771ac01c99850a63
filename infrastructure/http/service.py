"""One worker process's running service: its ledger (one connection pool), the group-commit
writer, the view watcher and follower, and the switch that starts draining on SIGTERM.

Draining: on SIGTERM or SIGINT the service first stops taking notifications (the transient
status with ``Retry-After``, and ``/readyz`` answers 503), optionally for ``drain_seconds`` so a
load balancer can notice; then uvicorn stops accepting connections and lets in-flight requests
finish, for at most `GRACE_SECONDS`. A request whose commit is not confirmed by
``drain_seconds + ANSWER_BY_SECONDS`` is answered the transient status (never 200). The service
then commits what is queued, stops its follower and closes the ledger. Whatever is stuck (a
commit waiting on a lock, a database that does not answer), the process exits by
``drain_seconds + EXIT_BY_SECONDS``: a watchdog ends it then.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from domain import services
from domain.ledger import Ledger
from domain.rows import Outcome
from infrastructure.http.checkpoints import Checkpointer
from infrastructure.http.config import HttpConfig
from infrastructure.http.freshness import Follower, Positions, ViewWatcher, live_positions
from infrastructure.http.logs import committed_group
from infrastructure.http.metrics import Metrics, StoreState
from infrastructure.http.threads import in_daemon_thread
from infrastructure.http.writer import GroupCommitWriter
from infrastructure.settings import Settings
from infrastructure.views.queries import Queries
from infrastructure.wiring import open_ledger
from projections.runner import Projector

HTTP_SOURCE = "HTTP delivery (POST /webhooks/capillary)"  # kept with each quarantined payload

logger = logging.getLogger("partner_ledger.http")
GRACE_SECONDS = 3.0  # uvicorn's graceful phase, after the drain period
ANSWER_BY_SECONDS = 2.5  # waiting deliveries are answered (transient status) by then
EXIT_BY_SECONDS = 4.5  # the watchdog's deadline, within drain_seconds + 5 s
CLOSE_SECONDS = 0.5  # closing the ledger after the writer and the follower
FORCED_EXIT_STATUS = 1


@dataclass
class Service:
    """What the routes of one worker process use."""

    config: HttpConfig
    ledger: Ledger
    projector: Projector
    queries: Queries
    writer: GroupCommitWriter
    watcher: ViewWatcher
    metrics: Metrics
    draining: threading.Event
    _probe: asyncio.Future[tuple[int, Positions]] | None = field(default=None, init=False)

    def store_state(self) -> StoreState:
        """View positions, lag and quarantine size, for a scrape (blocking)."""
        return StoreState(
            views=self.projector.status(),
            quarantine_open=int(services.counts(self.ledger)["quarantined"]),
        )

    def positions(self) -> tuple[int, Positions]:
        """The log's last position and each view's live position (blocking)."""
        return self.projector.last_position(), live_positions(self.projector)

    async def probe(self, *, timeout: float) -> tuple[int, Positions]:
        """`positions`, or `TimeoutError` after ``timeout`` seconds. One read at a time: while
        the database does not answer, probes share the read under way instead of piling up."""
        if self._probe is None or self._probe.done():
            self._probe = in_daemon_thread(self.positions)
        return await asyncio.wait_for(asyncio.shield(self._probe), timeout)


@asynccontextmanager
async def running_service(
    config: HttpConfig, settings: Settings, metrics: Metrics
) -> AsyncIterator[Service]:
    """Open everything a worker needs; on exit, drain and close it in order."""
    with ExitStack() as stack:
        ledger = stack.enter_context(open_ledger(settings))
        projector = Projector(ledger)
        checkpointer = Checkpointer(ledger)
        recording = services.Recording(
            ledger, source=HTTP_SOURCE, on_recorded=checkpointer.recorded
        )
        writer = GroupCommitWriter(
            recording.record,
            max_group=config.max_group_size,
            max_pending=config.max_pending,
            max_pending_bytes=config.max_pending_bytes,
            group_wait=config.group_wait_seconds,
            on_group=functools.partial(_committed, metrics),
        )
        service = Service(
            config=config,
            ledger=ledger,
            projector=projector,
            queries=Queries(projector.store),
            writer=writer,
            watcher=ViewWatcher(lambda: live_positions(projector)),
            metrics=metrics,
            draining=threading.Event(),
        )
        follower = Follower(lambda: Projector(ledger))
        writer.start()
        checkpointer.start()
        if config.follow:
            follower.start()
        _drain_on_signals(service, delay=config.drain_seconds)
        if not config.read_tokens:
            logger.warning(
                "no read token: the read endpoints answer 401 (PARTNER_LEDGER_READ_TOKEN)"
            )
        try:
            yield service
        finally:
            service.draining.set()
            # uvicorn has answered or cancelled every request by now: commit what is queued
            # in the time left, and stop the follower without waiting on the database.
            await writer.close(timeout=0.5)
            follower.stop(timeout=0.5)
            checkpointer.stop(timeout=0.5)
            # Closing the store can wait on a connection still in use by a stuck commit.
            closing = stack.pop_all()
            try:
                await asyncio.wait_for(in_daemon_thread(closing.close), CLOSE_SECONDS)
            except TimeoutError:
                logger.warning("shutdown: the ledger did not close within %g s", CLOSE_SECONDS)


def _committed(metrics: Metrics, outcomes: Sequence[Outcome], seconds: float) -> None:
    """What the service does with each committed group: its metrics and its log line."""
    metrics.observe_group(len(outcomes), seconds)
    committed_group(outcomes, seconds)


def _drain_on_signals(service: Service, *, delay: float) -> None:
    """Chain onto the server's SIGTERM/SIGINT handlers: start draining at once, and hand
    the signal on (after ``delay`` seconds the first time) so the server shuts down; answer
    waiting deliveries before the graceful phase ends, and end the process if it is stuck."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals can only be handled on the main thread (e.g. an in-process test)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if not callable(previous):
            continue
        signal.signal(signum, _chained(previous, service, delay, loop))


def _chained(
    previous: Callable[[int, FrameType | None], Any],
    service: Service,
    delay: float,
    loop: asyncio.AbstractEventLoop,
) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        first = not service.draining.is_set()
        service.draining.set()
        if not first:
            previous(signum, frame)
            return
        _start_watchdog(delay + EXIT_BY_SECONDS)
        # call_soon_threadsafe is safe from a signal handler; call_later is not.
        loop.call_soon_threadsafe(
            loop.call_later,
            delay + ANSWER_BY_SECONDS,
            service.writer.abandon,
            "the service is shutting down and the commit was not confirmed",
        )
        if delay > 0:
            loop.call_soon_threadsafe(loop.call_later, delay, previous, signum, frame)
        else:
            previous(signum, frame)

    return handler


def _start_watchdog(seconds: float) -> None:
    """End the process ``seconds`` from now if it has not exited by then. Every request was
    answered or cut off before: a commit still running is rolled back with the connection."""

    def watch() -> None:
        time.sleep(seconds)
        logger.error("shutdown did not finish within %g s; exiting now", seconds)
        logging.shutdown()
        os._exit(FORCED_EXIT_STATUS)

    threading.Thread(target=watch, name="shutdown-watchdog", daemon=True).start()
