"""Parsing payloads in worker processes while the ledger records the previous batches.

Parsing and validating a payload costs about as much Python time as recording it, and one
Python process runs on one core. A bulk ingest therefore hands each batch of raw payloads to a
worker process and records batch N while batch N+1 is being parsed. At most ``depth`` batches
are in flight, so memory stays flat however long the input is. Workers are spawned (not
forked): the ingesting process holds database connections and threads.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType

from domain.errors import InvalidNotificationError, LedgerError
from domain.ledger import parse_all
from domain.notifications import Notification

Parsed = list[Notification | InvalidNotificationError]
# Below this many input bytes, starting a worker costs more than it saves.
WORTH_A_WORKER = 4 << 20


class ParserFailedError(LedgerError):
    """A parsing worker died; nothing of its batches was recorded."""


def parse_workers(size: int | None) -> int:
    """Worker processes for an input of ``size`` bytes (None: unknown, e.g. stdin)."""
    if (os.cpu_count() or 1) < 2 or (size is not None and size < WORTH_A_WORKER):
        return 0
    return 1


class Parser:
    """Batches of raw payloads in, the same batches with their parse results out, in order."""

    def __init__(self, workers: int, *, depth: int = 4) -> None:
        self.depth = depth
        self._pool = (
            ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
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
        if self._pool is not None:
            self._pool.shutdown(wait=kind is None, cancel_futures=True)

    def parsed(
        self, batches: Iterator[tuple[list[bytes], int]]
    ) -> Iterator[tuple[list[bytes], int, Parsed]]:
        if self._pool is None:
            for batch, consumed in batches:
                yield batch, consumed, parse_all(batch)
            return
        pending: deque[tuple[list[bytes], int, Future[Parsed]]] = deque()
        for batch, consumed in batches:
            pending.append((batch, consumed, self._pool.submit(parse_all, batch)))
            if len(pending) >= self.depth:
                yield _finished(*pending.popleft())
        while pending:
            yield _finished(*pending.popleft())


def _finished(
    batch: list[bytes], consumed: int, future: Future[Parsed]
) -> tuple[list[bytes], int, Parsed]:
    try:
        return batch, consumed, future.result()
    except BrokenProcessPool:
        raise ParserFailedError("a parsing worker process died") from None
