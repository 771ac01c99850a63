"""The views on SQLite: rows by ``executemany``, write transactions begun IMMEDIATE,
byte-range locks in one lock file, polling for new events.

The lock file is ``PATH.lock`` beside the database, empty and never deleted, with one
byte-range lock per name (``fcntl.lockf`` on a byte whose offset comes from the name); the
kernel releases it when the process dies. Record locks belong to a process, not to an open
file, and closing any descriptor of the file drops them all: so a process shares one
descriptor per lock file, and its threads exclude each other with a lock per name.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore

from domain.errors import LockLostError, StorageUnavailableError
from infrastructure.ledger_queries import LedgerQueries
from infrastructure.storage_errors import TRANSIENT_ERRORS
from infrastructure.views.log import LogRecorder, RecorderLog
from infrastructure.views.store import SQLViewStore
from projections.locks import HeldLock, Patience
from projections.store import Generation, Row
from projections.views import View


@contextmanager
def write_transaction(datastore: SQLiteDatastore) -> Iterator[SQLiteCursor]:
    """A transaction that takes SQLite's write lock up front (BEGIN IMMEDIATE), waiting for it
    as long as the busy timeout allows. A transaction that reads first and writes later cannot
    wait for another writer: it fails at once with "database is locked"."""
    with datastore.get_connection(commit=True) as connection:
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            connection.rollback()
            raise
        connection.commit()


class SQLiteViewStore(SQLViewStore[SQLiteCursor]):
    def __init__(self, datastore: SQLiteDatastore) -> None:
        self.datastore = datastore
        super().__init__()

    def _sql(self, text: str) -> str:
        return text.replace("%s", "?")

    def transaction(self) -> AbstractContextManager[SQLiteCursor]:
        return write_transaction(self.datastore)

    @contextmanager
    def _reading(self) -> Iterator[SQLiteCursor]:
        with self.datastore.transaction(commit=False) as cursor:
            yield cursor

    def _insert(
        self, cursor: SQLiteCursor, view: View, generation: Generation, rows: Sequence[Row]
    ) -> None:
        if not rows:
            return
        names = ", ".join(view.column_names)
        marks = ", ".join("?" * len(view.columns))
        cursor.executemany(f"INSERT INTO {generation.table} ({names}) VALUES ({marks})", rows)

    def _columns(self, table: str) -> list[dict[str, Any]]:
        return self.query(f"SELECT name FROM pragma_table_info('{table}')")

    @contextmanager
    def savepoint(self, cursor: SQLiteCursor, *, bulk: bool = False) -> Iterator[None]:
        cursor.execute("SAVEPOINT view_rows")
        try:
            yield
        except BaseException:
            cursor.execute("ROLLBACK TO view_rows")
            cursor.execute("RELEASE view_rows")
            raise
        cursor.execute("RELEASE view_rows")


def lock_file_path(datastore: SQLiteDatastore) -> Path:
    """The one lock file of an SQLite ledger."""
    return Path(f"{datastore.pool.db_name}.lock")


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


class RangeLock:
    def __init__(self, path: Path, name: str, patience: Patience) -> None:
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


class RangeLocks:
    def __init__(self, path: Path) -> None:
        self.path = path

    def acquire(
        self, name: str, *, timeout: float = 0.0, cancel: threading.Event | None = None
    ) -> HeldLock:
        return RangeLock(self.path, name, Patience(name, timeout, cancel))


class PollWaiter:
    """SQLite cannot say the log moved: look again every ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def __enter__(self) -> PollWaiter:
        return self

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self.timeout)

    def __exit__(self, *exc: object) -> None:
        return None


class SQLiteViewStorage:
    """`projections.storage.ViewStorage` on SQLite."""

    transient: tuple[type[Exception], ...] = (*TRANSIENT_ERRORS, OSError)

    def __init__(
        self,
        recorder: LedgerQueries[SQLiteDatastore],
        notifications: LogRecorder,
        *,
        datastore: SQLiteDatastore,
    ) -> None:
        self.store = SQLiteViewStore(datastore)
        self.log = RecorderLog(recorder, notifications)
        self.locks = RangeLocks(lock_file_path(datastore))

    def waiter(self, *, backstop_seconds: float, poll_seconds: float) -> PollWaiter:
        return PollWaiter(poll_seconds)
