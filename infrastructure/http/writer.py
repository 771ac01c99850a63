"""Group commit: many concurrent requests, one transaction per group, one writer.

Requests put their raw payload on a queue and wait. A single writer task takes what is queued
(up to ``max_group`` payloads: everything that arrived while the previous commit ran), calls
``Ledger.receive`` once for the group on its own thread, and only after that call has returned
(the transaction is committed) gives each request its `Outcome`. So a 200 still means durably
committed, while under load the database does one commit per group instead of one per request.

If the commit fails, the whole group was rolled back (one transaction): every request of the
group gets the error and answers 503. An error that is not the database's (a bug) is retried
payload by payload, so one poisonous payload cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg
from eventsourcing.persistence import PersistenceError

from domain.errors import LedgerError, StorageUnavailableError
from domain.ledger import ConcurrencyError, Outcome

Receive = Callable[[Sequence[bytes]], list[Outcome]]
GroupObserver = Callable[[int, float], None]

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    StorageUnavailableError,
    ConcurrencyError,
    PersistenceError,
    psycopg.Error,
    sqlite3.Error,
)
logger = logging.getLogger("partner_ledger.http")


class WriterUnavailableError(LedgerError):
    """The payload was not committed (queue full, shutting down, or commit not confirmed in
    time); the sender should retry. A retry is always safe: duplicates are recognised."""


@dataclass
class _Pending:
    payload: bytes
    future: asyncio.Future[Outcome] = field(repr=False)


class GroupCommitWriter:
    """One per process: serializes commits and groups the payloads waiting for them."""

    def __init__(
        self,
        receive: Receive,
        *,
        max_group: int = 100,
        max_pending: int = 1000,
        on_group: GroupObserver | None = None,
    ) -> None:
        self._receive = receive
        self._max_group = max_group
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue(maxsize=max_pending)
        self._on_group = on_group
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    async def submit(self, payload: bytes, *, timeout: float) -> Outcome:
        """The outcome of ``payload`` once its group is committed, or an error: the
        database's (`StorageUnavailableError` and friends) or `WriterUnavailableError`."""
        if self._closed:
            raise WriterUnavailableError("the service is shutting down")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Pending(payload, future))
        except asyncio.QueueFull:
            raise WriterUnavailableError(
                "too many notifications are waiting to be committed"
            ) from None
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            # Not yet taken: it will be skipped. Already in a commit: it may still be
            # recorded, and the sender's retry will then be answered as a duplicate.
            future.cancel()
            raise WriterUnavailableError(
                f"the commit was not confirmed within {timeout:g} s"
            ) from None

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closed = True
        if self._task is not None:
            await self._queue.put(None)
            await self._task
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < self._max_group and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                group.append(item)
            group = [item for item in group if not item.future.cancelled()]
            if group:
                await loop.run_in_executor(self._executor, self._commit, group, loop)

    def _commit(self, group: list[_Pending], loop: asyncio.AbstractEventLoop) -> None:
        """On the writer thread: one transaction for the group, then wake its requests."""
        started = time.perf_counter()
        try:
            outcomes = self._receive([item.payload for item in group])
        except TRANSIENT_ERRORS as error:
            logger.warning("commit of %d notifications failed: %s", len(group), _first_line(error))
            for item in group:
                loop.call_soon_threadsafe(_fail, item.future, error)
            return
        except Exception as error:
            if len(group) == 1:
                logger.exception("a notification could not be processed")
                loop.call_soon_threadsafe(_fail, group[0].future, error)
                return
            for item in group:
                self._commit([item], loop)
            return
        if self._on_group is not None:
            self._on_group(len(group), time.perf_counter() - started)
        for item, outcome in zip(group, outcomes, strict=True):
            loop.call_soon_threadsafe(_resolve, item.future, outcome)


def _resolve(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)


def _fail(future: asyncio.Future[Outcome], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
