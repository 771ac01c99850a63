"""Everything the projections need from a ledger's storage, in one port (`ViewStorage`):
the view store, the log reader, the locks and the waiter. The ledger's recorder gives it
(`infrastructure.views`), one implementation per database."""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

from projections.locks import Locks
from projections.log import EventLog
from projections.store import ViewStore


class Waiter(Protocol):
    """Sleeps until the log may have moved (or a timeout passes)."""

    def __enter__(self) -> Waiter: ...

    def __exit__(self, *exc: object) -> None: ...

    def wait(self, stop: threading.Event) -> None:
        """Return when the log may have moved, after a timeout, or once ``stop`` is set."""
        ...


class ViewStorage(Protocol):
    store: ViewStore
    log: EventLog
    locks: Locks
    # The errors that mean "the database is away for now" (connection, timeout, operator):
    # a follower says so and tries again; any other error is a bug, and surfaces.
    transient: tuple[type[Exception], ...]

    def waiter(self, *, backstop_seconds: float, poll_seconds: float) -> Waiter:
        """Woken by the database when it can say the log moved (then ``backstop_seconds`` is
        the longest sleep), else polling every ``poll_seconds``."""
        ...


@runtime_checkable
class GivesViewStorage(Protocol):
    def view_storage(self) -> ViewStorage: ...


def storage_of(recorder: object) -> ViewStorage:
    """The view storage of a ledger's recorder."""
    if not isinstance(recorder, GivesViewStorage):
        raise TypeError(f"{type(recorder).__name__} keeps no views")
    return recorder.view_storage()
