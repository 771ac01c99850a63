"""Group commit: many concurrent requests, one transaction per group, one writer.

Requests put their raw payload on a queue and wait. A single writer task takes what is queued
(up to ``max_group`` payloads: everything that arrived while the previous commit ran), calls
``Ledger.receive`` once for the group on its own thread, and only after that call has returned
(the transaction is committed) gives each request its `Outcome`. So a 200 still means durably
committed, while under load the database does one commit per group instead of one per request.

Under concurrency the senders just answered are about to send again: after a group of several,
the writer waits up to ``group_wait`` seconds for as many new deliveries as it answered (ending
as soon as they are queued, or the group is full). Each group pays a fixed cost of about 20
round trips to the database, so taking both halves of the senders at once instead of
alternating between them nearly doubles the deliveries per commit for a few milliseconds. A
lone delivery (the last group had one) is still committed at once.

If the commit fails, the whole group was rolled back (one transaction): every request of the
group gets the error and answers the transient status. An error that is not the database's (a
bug) is retried payload by payload, so one poisonous payload cannot fail its neighbours.

Bounds: at most ``max_pending`` payloads and ``max_pending_bytes`` bytes of bodies (being read or
queued: a request reserves its body's bytes before reading it) per process; the commits run on
a daemon thread, so a commit stuck in the database never holds the process's exit; `abandon`
answers every waiting request at once (shutdown), none of them with an outcome it did not get.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from domain.errors import LedgerError, StorageUnavailableError, first_line
from domain.ledger import ConcurrencyError, Outcome
from infrastructure.http.bodies import ByteBudget
from infrastructure.storage_errors import STORAGE_ERRORS

Receive = Callable[[Sequence[bytes]], list[Outcome]]
GroupObserver = Callable[[Sequence[Outcome], float], None]
"""Hears each committed group: its outcomes, in order, and how long its commit took (s)."""

# Not committed, for the database's reasons (not a bug in one payload): retry later.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    StorageUnavailableError,
    ConcurrencyError,
    *STORAGE_ERRORS,
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
        max_pending_bytes: int = 16 * 1_048_576,
        group_wait: float = 0.0,
        on_group: GroupObserver | None = None,
    ) -> None:
        self._receive = receive
        self._max_group = max_group
        self._group_wait = group_wait
        self._wanted = 0  # queued deliveries that end the wait for the next group
        self._enough = asyncio.Event()
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue(maxsize=max_pending)
        self.budget = ByteBudget(max_pending_bytes)
        self._on_group = on_group
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        # A daemon thread, not an executor: the interpreter joins executor threads at exit,
        # and a commit stuck on a lock would then hold the process forever.
        self._thread = threading.Thread(target=self._work, name="ledger-writer", daemon=True)
        self._task: asyncio.Task[None] | None = None
        self._waiting: set[asyncio.Future[Outcome]] = set()
        self._closed = False

    @property
    def queued(self) -> int:
        """Payloads queued that the writer has not taken into a group yet."""
        return self._queue.qsize()

    def start(self) -> None:
        self._thread.start()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    def abandon(self, reason: str) -> None:
        """Answer every request still waiting with `WriterUnavailableError` (shutdown). A
        commit already running may still go through: its senders' retries are duplicates."""
        self._closed = True
        for future in list(self._waiting):
            _fail(future, WriterUnavailableError(reason))

    async def submit(self, payload: bytes, *, timeout: float) -> Outcome:
        """The outcome of ``payload`` once its group is committed, or an error: the
        database's (`StorageUnavailableError` and friends) or `WriterUnavailableError`."""
        if self._closed:
            raise WriterUnavailableError("the service is shutting down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        try:
            self._queue.put_nowait(_Pending(payload, future))
        except asyncio.QueueFull:
            raise WriterUnavailableError(
                "too many notifications are waiting to be committed"
            ) from None
        self._waiting.add(future)
        if self._wanted and self._queue.qsize() >= self._wanted:
            self._enough.set()
        # A timer on the future itself, not wait_for(shield(...)): the same deadline for a
        # fifth of the event loop's work per delivery. A future that is done (expired, or
        # cancelled with its request) and not yet taken is skipped; one already in a commit
        # may still be recorded, and the sender's retry is then answered as a duplicate.
        expiry = loop.call_later(timeout, _expire, future, timeout)
        try:
            return await future
        finally:
            expiry.cancel()
            self._waiting.discard(future)

    async def close(self, *, timeout: float) -> None:
        """Commit what is queued, for at most ``timeout`` seconds, then stop."""
        self._closed = True
        if self._task is not None:
            try:
                self._queue.put_nowait(None)
            except asyncio.QueueFull:
                self._task.cancel()  # abandoned below; nothing queued is answered 200
            else:
                try:
                    await asyncio.wait_for(self._task, timeout)
                except TimeoutError:  # wait_for cancelled the task; the thread is a daemon
                    logger.warning("shutdown: a commit was still running after %g s", timeout)
        self.abandon("the service is shutting down")
        self._jobs.put(None)

    async def _run(self) -> None:
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
            group = [item for item in group if not item.future.done()]
            if group:
                await self._on_writer_thread(functools.partial(self._commit, group))
            if len(group) > 1 and not stopping:
                await self._gather(len(group))

    async def _gather(self, answered: int) -> None:
        """Wait up to ``group_wait`` seconds for ``answered`` more deliveries to be queued."""
        self._wanted = min(self._queue.qsize() + answered, self._max_group)
        try:
            if self._group_wait > 0 and self._queue.qsize() < self._wanted:
                self._enough.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._enough.wait(), self._group_wait)
        finally:
            self._wanted = 0

    async def _on_writer_thread(self, job: Callable[[], Callable[[], None]]) -> None:
        """``job`` on the writer thread. The answers it returns are given in the same call
        into the loop that wakes this task, after it: the writer is back at the queue before
        the senders it answered can send again, whatever the threads' timing."""
        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def run() -> None:
            answer: Callable[[], None] | None = None
            try:
                answer = job()
            finally:
                _notify(loop, _finish, finished, answer)

        self._jobs.put(run)
        await finished

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def _commit(self, group: list[_Pending]) -> Callable[[], None]:
        """On the writer thread: one transaction for the group; returns its answers."""
        started = time.perf_counter()
        futures = [item.future for item in group]
        try:
            outcomes = self._receive([item.payload for item in group])
        except TRANSIENT_ERRORS as error:
            logger.warning("commit of %d notifications failed: %s", len(group), first_line(error))
            return functools.partial(_fail_all, futures, error)
        except Exception as error:
            if len(group) == 1:
                logger.exception("a notification could not be processed")
                return functools.partial(_fail_all, futures, error)
            return functools.partial(_answer_all, [self._commit([item]) for item in group])
        if self._on_group is not None:
            self._on_group(outcomes, time.perf_counter() - started)
        # One wake-up of the loop for the whole group, not one per request.
        return functools.partial(_resolve, futures, outcomes)


def _resolve(futures: list[asyncio.Future[Outcome]], outcomes: list[Outcome]) -> None:
    for future, outcome in zip(futures, outcomes, strict=True):
        if not future.done():
            future.set_result(outcome)


def _notify(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: object) -> None:
    """Run ``callback`` on the loop; a commit that ends after the loop closed wakes nobody."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)


def _finish(finished: asyncio.Future[None], answer: Callable[[], None] | None) -> None:
    if not finished.done():
        finished.set_result(None)
    if answer is not None:
        answer()


def _answer_all(answers: list[Callable[[], None]]) -> None:
    for answer in answers:
        answer()


def _fail_all(futures: list[asyncio.Future[Outcome]], error: BaseException) -> None:
    for future in futures:
        _fail(future, error)


def _expire(future: asyncio.Future[Outcome], timeout: float) -> None:
    _fail(future, WriterUnavailableError(f"the commit was not confirmed within {timeout:g} s"))


def _fail(future: asyncio.Future[Outcome], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
