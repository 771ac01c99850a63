"""Named, process-wide exclusive locks, which a holder can check it still holds: the port
(`Locks`, `HeldLock`), its errors, and `LockSet`. Each database's locks are in
`infrastructure.views` (a session advisory lock on PostgreSQL, a byte-range lock in one lock
file on SQLite).

Used so that only one follower per view runs, and only one rebuild per view at a time. A lock
can go while its holder runs (an outage ends a database session; someone removes a lock
file), so a holder calls `HeldLock.check` before it writes, and stops on `LockLostError`.

Every wait has a deadline: ``timeout`` seconds (0: try once), then `LockHeldError`; a wait
also ends, with `LockHeldError`, as soon as its ``cancel`` event is set (a follower told to stop).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from domain.errors import LockHeldError, LockLostError

_POLL_SECONDS = 0.05


class HeldLock(Protocol):
    name: str

    def check(self) -> None:
        """Return if the lock is still held; raise `LockLostError` otherwise."""

    def release(self) -> None: ...


class Locks(Protocol):
    """Where a ledger's locks are taken."""

    def acquire(
        self, name: str, *, timeout: float = 0.0, cancel: threading.Event | None = None
    ) -> HeldLock:
        """Take the lock ``name``, waiting at most ``timeout`` seconds (or until ``cancel`` is
        set); `LockHeldError` if another process holds it then."""
        ...


class Patience:
    """How long a taker waits for a lock: until a deadline, or until it is told to stop."""

    def __init__(self, name: str, timeout: float, cancel: threading.Event | None) -> None:
        self.name = name
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.cancel = cancel

    def pause(self) -> None:
        """Wait a moment before trying again; `LockHeldError` when there is no time left."""
        if time.monotonic() >= self.deadline:
            waited = f" (waited {self.timeout:g} s)" if self.timeout > 0 else ""
            raise LockHeldError(f"another process holds the lock {self.name!r}{waited}")
        if self.cancel is None:
            time.sleep(_POLL_SECONDS)
        elif self.cancel.wait(_POLL_SECONDS):
            raise LockHeldError(f"stopped waiting for the lock {self.name!r}")


class LockSet:
    """Several locks taken together, in name order (so two takers cannot deadlock), checked
    together, released together."""

    def __init__(
        self,
        locks: Locks,
        names: list[str],
        *,
        timeout: float = 0.0,
        cancel: threading.Event | None = None,
    ) -> None:
        self.locks = locks
        self.names = sorted(names)
        self.timeout = timeout
        self.cancel = cancel
        self.held: list[HeldLock] = []

    def take(self) -> None:
        """Take every lock, or none: `LockHeldError` if another process holds one."""
        self.release()
        deadline = time.monotonic() + self.timeout
        try:
            for name in self.names:
                remaining = max(deadline - time.monotonic(), 0.0)
                self.held.append(self.locks.acquire(name, timeout=remaining, cancel=self.cancel))
        except BaseException:
            self.release()
            raise

    def check(self) -> None:
        """`LockLostError` unless every lock is still held."""
        if not self.held:
            raise LockLostError(f"the locks {', '.join(map(repr, self.names))} are not held")
        for held in self.held:
            held.check()

    def release(self) -> None:
        while self.held:
            self.held.pop().release()
