"""One worker process's running service: its ledger (one connection pool), the group-commit
writer, the view watcher and follower, and the switch that starts draining on SIGTERM.

Draining: on SIGTERM or SIGINT the service first stops taking notifications (503 with
``Retry-After``, and ``/readyz`` answers 503), optionally for ``drain_seconds`` so a load
balancer can notice; then uvicorn stops accepting connections, lets in-flight requests finish,
and the service commits what is queued, stops its follower and closes the ledger.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from types import FrameType
from typing import Any

from domain.ledger import Ledger
from infrastructure.http.config import HttpConfig
from infrastructure.http.freshness import Follower, Positions, ViewWatcher, live_positions
from infrastructure.http.metrics import Metrics, StoreState
from infrastructure.http.writer import GroupCommitWriter
from infrastructure.settings import Settings
from infrastructure.wiring import open_ledger
from projections.queries import Queries
from projections.runner import Projector

HTTP_SOURCE = "HTTP delivery (POST /webhooks/capillary)"  # kept with each quarantined payload

logger = logging.getLogger("partner_ledger.http")


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

    def store_state(self) -> StoreState:
        """View positions, lag and quarantine size, for a scrape (blocking)."""
        return StoreState(
            views=self.projector.status(),
            quarantine_open=int(self.ledger.store.counts()["quarantined"]),
        )

    def positions(self) -> tuple[int, Positions]:
        """The head of the log and each view's live position (blocking)."""
        return self.projector.head(), live_positions(self.projector)


@asynccontextmanager
async def running_service(
    config: HttpConfig, settings: Settings, metrics: Metrics
) -> AsyncIterator[Service]:
    """Open everything a worker needs; on exit, drain and close it in order."""
    with ExitStack() as stack:
        ledger = stack.enter_context(open_ledger(settings))
        projector = Projector(ledger)
        writer = GroupCommitWriter(
            partial(ledger.receive, sources=HTTP_SOURCE),
            max_group=config.max_group_size,
            max_pending=config.max_pending,
            on_group=metrics.observe_group,
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
        if config.follow:
            follower.start()
        _drain_on_signals(service.draining, delay=config.drain_seconds)
        if not config.read_tokens:
            logger.warning(
                "no read token: the read endpoints answer 401 (PARTNER_LEDGER_READ_TOKEN)"
            )
        try:
            yield service
        finally:
            service.draining.set()
            await writer.close()
            await asyncio.to_thread(follower.stop)


def _drain_on_signals(draining: threading.Event, *, delay: float) -> None:
    """Chain onto the server's SIGTERM/SIGINT handlers: start draining at once, and hand
    the signal on (after ``delay`` seconds the first time) so the server shuts down."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals can only be handled on the main thread (e.g. an in-process test)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if not callable(previous):
            continue
        signal.signal(signum, _chained(previous, draining, delay, loop))


def _chained(
    previous: Callable[[int, FrameType | None], Any],
    draining: threading.Event,
    delay: float,
    loop: asyncio.AbstractEventLoop,
) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        first = not draining.is_set()
        draining.set()
        if first and delay > 0:
            # call_soon_threadsafe is safe from a signal handler; call_later is not.
            loop.call_soon_threadsafe(loop.call_later, delay, previous, signum, frame)
        else:
            previous(signum, frame)

    return handler
