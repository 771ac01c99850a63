"""The views' own PostgreSQL sessions, outside the library's pool: advisory locks and LISTEN.

A lock is a session advisory lock (key ``hashtext('partner-ledger:NAME')``) on a connection of
its own. It lasts as long as that session: a killed process releases it, but so does an outage
or ``pg_terminate_backend``, while the process goes on; so `HeldLock.check` asks the server
(one round trip, with a deadline).
"""

from __future__ import annotations

import os
import threading
from contextlib import suppress
from typing import TypedDict

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import TupleRow

from domain.errors import LockLostError
from projections.locks import HeldLock, Patience

STATEMENT_DEADLINE_MS = 5000  # a lock connection's every statement, the check included


class ConnectionParams(TypedDict):
    """Where and as whom the library's pool connects (``psycopg.connect`` keywords)."""

    dbname: str
    host: str
    port: str
    user: str
    password: str


def connection_params(datastore: PostgresDatastore) -> ConnectionParams:
    """Connection parameters of the library's pool, for the few connections that must live
    outside it: advisory locks and LISTEN."""
    kwargs = datastore.pool.kwargs
    assert isinstance(kwargs, dict)  # the library's pool always keeps them
    return ConnectionParams(
        dbname=kwargs["dbname"],
        host=kwargs["host"],
        port=kwargs["port"],
        user=kwargs["user"],
        password=kwargs["password"],
    )


_HOLDS = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = pg_backend_pid() AND objsubid = 1 "
    "AND classid = ((hashtext(%(key)s)::bigint >> 32) & 4294967295)::oid "
    "AND objid = (hashtext(%(key)s)::bigint & 4294967295)::oid)"
)


class AdvisoryLock:
    def __init__(self, params: ConnectionParams, name: str, patience: Patience) -> None:
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


class AdvisoryLocks:
    def __init__(self, params: ConnectionParams) -> None:
        self.params = params

    def acquire(
        self, name: str, *, timeout: float = 0.0, cancel: threading.Event | None = None
    ) -> HeldLock:
        return AdvisoryLock(self.params, name, Patience(name, timeout, cancel))


class NotifyWaiter:
    """LISTEN/NOTIFY (reconnecting after an outage, polling meanwhile)."""

    def __init__(self, params: ConnectionParams, channel: str, timeout: float) -> None:
        self.params = params
        self.channel = channel
        self.timeout = timeout
        self.connection: psycopg.Connection[TupleRow] | None = None

    def __enter__(self) -> NotifyWaiter:
        return self

    def _listen(self) -> psycopg.Connection[TupleRow] | None:
        if self.connection is None:
            try:
                self.connection = psycopg.connect(**self.params, autocommit=True, connect_timeout=5)
                self.connection.execute(f"LISTEN {self.channel}")
            except psycopg.Error:
                self.connection = None
        return self.connection

    def wait(self, stop: threading.Event) -> None:
        connection = self._listen()
        if connection is None:
            stop.wait(self.timeout)
            return
        try:
            for _ in connection.notifies(timeout=self.timeout, stop_after=1):
                break
        except psycopg.Error:
            connection.close()
            self.connection = None
            stop.wait(self.timeout)

    def __exit__(self, *exc: object) -> None:
        if self.connection is not None:
            self.connection.close()
