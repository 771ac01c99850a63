"""Named, process-wide exclusive locks: PostgreSQL advisory locks, or lock files for SQLite.

Used so that only one follower per view runs, and only one rebuild per view at a time. The lock
lives as long as its connection (or open file): a killed process releases it.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from domain.errors import LedgerError


class LockHeldError(LedgerError):
    """Another process holds the lock."""


def postgres_params(datastore: Any) -> dict[str, Any] | None:
    """Connection parameters of the library's PostgreSQL pool (None for SQLite), for the few
    connections that must live outside the pool: advisory locks and LISTEN."""
    kwargs = getattr(datastore.pool, "kwargs", None)
    if kwargs is None:
        return None
    return {k: kwargs[k] for k in ("dbname", "host", "port", "user", "password") if k in kwargs}


@contextmanager
def exclusive(datastore: Any, name: str, *, wait: bool) -> Iterator[None]:
    """Hold the lock ``name`` for the block; without ``wait``, `LockHeldError` if taken."""
    params = postgres_params(datastore)
    if params is not None:
        with _advisory(params, name, wait=wait):
            yield
    else:
        with _lock_file(Path(f"{datastore.pool.db_name}.{name.replace(':', '-')}.lock"), wait=wait):
            yield


@contextmanager
def _advisory(params: dict[str, Any], name: str, *, wait: bool) -> Iterator[None]:
    with psycopg.connect(**params, autocommit=True) as connection:
        key = f"partner-ledger:{name}"
        if wait:
            connection.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        else:
            row = connection.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
            if not row or not row[0]:
                raise LockHeldError(f"another process holds the lock {name!r}")
        yield


@contextmanager
def _lock_file(path: Path, *, wait: bool) -> Iterator[None]:
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeldError(f"another process holds the lock {path.name!r}") from None
        yield
