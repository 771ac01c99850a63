"""Parsing payloads in worker processes while the ledger records the previous batches.

Parsing and validating a payload costs a good share of the Python time of recording it, and
one Python process runs on one core. A bulk ingest therefore hands each batch of raw payloads
to worker processes (one per core the process may use, less the one that records) and records
batch N while the next batches are being parsed; results come back in input order whichever
worker finishes first. At most ``depth`` batches are in flight (at least two per worker), so
memory stays flat however long the input is. Workers are spawned (not forked): the ingesting
process holds database connections and threads.

Ctrl-C is the parent's business: a terminal sends SIGINT to the whole process group, and a
worker that took it would print its own traceback. Workers ignore SIGINT (they are started with
it blocked, so that none arrives before they can ignore it); the parent, interrupted, cancels
the batches not started, lets the workers finish the ones they hold and exit, and terminates a
worker still running after ``FINISH_SECONDS``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType

from domain.decode import parse_all
from domain.errors import InvalidNotificationError, LedgerError
from domain.notifications import Notification

Parsed = list[Notification | InvalidNotificationError]
# Below this many input bytes, starting a worker costs more than it saves.
WORTH_A_WORKER = 4 << 20
# Interrupted or failed, how long the workers may take to finish the batches they hold.
FINISH_SECONDS = 5.0


class ParserFailedError(LedgerError):
    """A parsing worker died; nothing of its batches was recorded."""


def parse_workers(size: int | None, *, cores: int | None = None) -> int:
    """Worker processes for an input of ``size`` bytes (None: unknown, e.g. stdin): one per
    core but the recorder's, none on one core or for a small input. ``cores``: those this
    process may run on (default: its CPU affinity)."""
    cores = usable_cores() if cores is None else cores
    if cores < 2 or (size is not None and size < WORTH_A_WORKER):
        return 0
    return cores - 1


def usable_cores() -> int:
    """The cores this process may run on (its affinity, where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Parser:
    """Batches of raw payloads in, the same batches with their parse results out, in order."""

    def __init__(self, workers: int, *, depth: int = 4) -> None:
        self.depth = max(depth, 2 * workers)
        self._pool = (
            ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_ignore_interrupts,
            )
            if workers
            else None
        )

    def __enter__(self) -> Parser:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._pool is None:
            return
        if kind is not None:
            self._end_workers()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _end_workers(self) -> None:
        """Interrupted or failed: no batch that has not started is parsed; the workers finish
        the few they hold (well under a second) and exit, and one still running after
        ``FINISH_SECONDS`` is terminated. Terminating them at once could leave a batch half
        written into the pipe of a queue that nobody reads any more, and the executor's
        shutdown waiting for it forever (seen: Ctrl-C hung one ingest in a full suite run)."""
        assert self._pool is not None
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + FINISH_SECONDS
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():
                process.terminate()

    def parsed(
        self, batches: Iterator[tuple[list[bytes], int]]
    ) -> Iterator[tuple[list[bytes], int, Parsed]]:
        if self._pool is None:
            for batch, consumed in batches:
                yield batch, consumed, parse_all(batch)
            return
        pending: deque[tuple[list[bytes], int, Future[Parsed]]] = deque()
        for batch, consumed in batches:
            pending.append((batch, consumed, _without_interrupts(self._pool.submit, batch)))
            if len(pending) >= self.depth:
                yield _finished(*pending.popleft())
        while pending:
            yield _finished(*pending.popleft())


def _ignore_interrupts() -> None:
    """A worker's first act: SIGINT is for the parent (see the module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _without_interrupts(
    submit: Callable[..., Future[Parsed]], batch: list[bytes]
) -> Future[Parsed]:
    """Submit with SIGINT blocked in this thread: a worker spawned by this call inherits the
    mask, so a Ctrl-C during its start-up waits until it ignores SIGINT. A SIGINT meanwhile
    stays pending here and interrupts the parent as soon as the mask is restored."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return submit(parse_all, batch)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _finished(
    batch: list[bytes], consumed: int, future: Future[Parsed]
) -> tuple[list[bytes], int, Parsed]:
    try:
        return batch, consumed, future.result()
    except BrokenProcessPool:
        raise ParserFailedError("a parsing worker process died") from None
