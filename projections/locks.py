"""Named, process-wide exclusive locks, which a holder can check it still holds.

Used so that only one follower per view runs, and only one rebuild per view at a time.

- PostgreSQL: a session advisory lock (key ``hashtext('partner-ledger:NAME')``) on a connection
  of its own. It lasts as long as that session: a killed process releases it, but so does an
  outage or ``pg_terminate_backend``, while the process goes on. So a holder calls
  `HeldLock.check` (one round trip, with a deadline) before it writes, and stops on
  `LockLostError`.
- SQLite: one lock file beside the database, ``PATH.lock``, empty and never deleted, with one
  byte-range lock per name (``fcntl.lockf`` on a byte whose offset comes from the name); the
  kernel releases it when the process dies. Record locks belong to a process, not to an open
  file, and closing any descriptor of the file drops them all: so a process shares one
  descriptor per lock file, and its threads exclude each other with a lock per name.

Every wait has a deadline: ``timeout`` seconds (0: try once), then `LockHeldError`; a wait
also ends, with `LockHeldError`, as soon as its ``cancel`` event is set (a follower told to stop).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

import psycopg

from domain.errors import LedgerError, StorageUnavailableError

STATEMENT_DEADLINE_MS = 5000  # a lock connection's every statement, the check included
_POLL_SECONDS = 0.05


class LockHeldError(LedgerError):
    """Another process holds the lock."""


class LockLostError(LedgerError):
    """A lock this process took is no longer held: its connection ended, or its lock file
    was removed. Whatever it guarded must not be written until it is taken again."""


class HeldLock(Protocol):
    name: str

    def check(self) -> None:
        """Return if the lock is still held; raise `LockLostError` otherwise."""

    def release(self) -> None: ...


def postgres_params(datastore: Any) -> dict[str, Any] | None:
    """Connection parameters of the library's PostgreSQL pool (None for SQLite), for the few
    connections that must live outside the pool: advisory locks and LISTEN."""
    kwargs = getattr(datastore.pool, "kwargs", None)
    if kwargs is None:
        return None
    return {k: kwargs[k] for k in ("dbname", "host", "port", "user", "password") if k in kwargs}


def lock_file_path(datastore: Any) -> Path:
    """The one lock file of an SQLite ledger."""
    return Path(f"{datastore.pool.db_name}.lock")


def acquire(
    datastore: Any, name: str, *, timeout: float = 0.0, cancel: threading.Event | None = None
) -> HeldLock:
    """Take the lock ``name``, waiting at most ``timeout`` seconds (or until ``cancel`` is
    set); `LockHeldError` if another process holds it then."""
    patience = _Patience(name, timeout, cancel)
    params = postgres_params(datastore)
    if params is not None:
        return _AdvisoryLock(params, name, patience)
    return _RangeLock(lock_file_path(datastore), name, patience)


@contextmanager
def exclusive(datastore: Any, name: str, *, timeout: float = 0.0) -> Iterator[HeldLock]:
    """Hold the lock ``name`` for the block (see `acquire`)."""
    held = acquire(datastore, name, timeout=timeout)
    try:
        yield held
    finally:
        held.release()


class _Patience:
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


# --- PostgreSQL --------------------------------------------------------------------------

_HOLDS = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = pg_backend_pid() AND objsubid = 1 "
    "AND classid = ((hashtext(%(key)s)::bigint >> 32) & 4294967295)::oid "
    "AND objid = (hashtext(%(key)s)::bigint & 4294967295)::oid)"
)


class _AdvisoryLock:
    def __init__(self, params: dict[str, Any], name: str, patience: _Patience) -> None:
        self.name = name
        self.key = f"partner-ledger:{name}"
        self.connection = psycopg.connect(
            **params,
            autocommit=True,
            connect_timeout=5,
            application_name=f"partner-ledger lock {name} pid {os.getpid()}"[:63],
            options=f"-c statement_timeout={STATEMENT_DEADLINE_MS}",
            # A silent network: notice within seconds rather than the kernel's hours.
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=1,
            keepalives_count=3,
            tcp_user_timeout=STATEMENT_DEADLINE_MS,
        )
        try:
            while not self._try():
                patience.pause()
        except BaseException:
            self.connection.close()
            raise

    def _try(self) -> bool:
        row = self.connection.execute(
            "SELECT pg_try_advisory_lock(hashtext(%s))", (self.key,)
        ).fetchone()
        return bool(row and row[0])

    def check(self) -> None:
        try:
            row = self.connection.execute(_HOLDS, {"key": self.key}).fetchone()
        except psycopg.Error as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "closed"
            raise LockLostError(
                f"lost the lock {self.name!r}: its database session ended ({reason})"
            ) from None
        if not row or not row[0]:
            raise LockLostError(f"lost the lock {self.name!r}: its session no longer holds it")

    def release(self) -> None:
        with suppress(psycopg.Error):  # a broken session has released it already
            self.connection.close()


# --- SQLite: byte-range locks in one file ------------------------------------------------


def lock_byte(name: str) -> int:
    """The byte of the lock file that stands for ``name``: distinct for the names in use (a test
    checks), below 2**30 so that any off_t holds it."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") >> 2


class _LockFile:
    """This process's one descriptor on a lock file, shared by every lock taken in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        stat = os.fstat(self.fd)
        self.identity = (stat.st_dev, stat.st_ino)
        self.users = 0
        self.threads: dict[str, threading.Lock] = {}

    def replaced(self) -> bool:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (stat.st_dev, stat.st_ino) != self.identity


_files: dict[Path, _LockFile] = {}
_files_guard = threading.Lock()


class _RangeLock:
    def __init__(self, path: Path, name: str, patience: _Patience) -> None:
        self.name = name
        self.offset = lock_byte(name)
        self.file, self.thread_lock = _share(path.absolute(), name)
        try:
            # Another thread of this process first (record locks would not see it), then
            # other processes.
            while not self.thread_lock.acquire(blocking=False):
                patience.pause()
            try:
                while not self._try():
                    patience.pause()
            except BaseException:
                self.thread_lock.release()
                raise
        except BaseException:
            _unshare(self.file)
            raise

    def _try(self) -> bool:
        try:
            fcntl.lockf(self.file.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, self.offset)
        except (BlockingIOError, PermissionError):  # EAGAIN or EACCES, by platform
            return False
        return True

    def check(self) -> None:
        if self.file.replaced():
            raise LockLostError(
                f"lost the lock {self.name!r}: its lock file {self.file.path} was removed or "
                "replaced"
            )

    def release(self) -> None:
        with suppress(OSError):
            fcntl.lockf(self.file.fd, fcntl.LOCK_UN, 1, self.offset)
        self.thread_lock.release()
        _unshare(self.file)


def _share(path: Path, name: str) -> tuple[_LockFile, threading.Lock]:
    with _files_guard:
        file = _files.get(path)
        if file is None or file.replaced():
            try:
                file = _files[path] = _LockFile(path)
            except OSError as error:
                raise StorageUnavailableError(
                    f"cannot open the lock file {path}: {error.strerror or error}"
                ) from None
        file.users += 1
        return file, file.threads.setdefault(name, threading.Lock())


def _unshare(file: _LockFile) -> None:
    with _files_guard:
        file.users -= 1
        if file.users == 0:
            os.close(file.fd)  # this process holds no lock in it any more
            if _files.get(file.path) is file:
                del _files[file.path]


class LockSet:
    """Several locks taken together, in name order (so two takers cannot deadlock), checked
    together, released together."""

    def __init__(
        self,
        datastore: Any,
        names: list[str],
        *,
        timeout: float = 0.0,
        cancel: threading.Event | None = None,
    ) -> None:
        self.datastore = datastore
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
                self.held.append(
                    acquire(self.datastore, name, timeout=remaining, cancel=self.cancel)
                )
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
