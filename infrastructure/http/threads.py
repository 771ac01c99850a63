"""Blocking calls on daemon threads, for what may hang on the database.

asyncio's default executor (``asyncio.to_thread``) is joined when the loop and the interpreter
shut down, so one call stuck on an unreachable database would hold the process's exit. A daemon
thread per call is not joined; the caller bounds its wait with `asyncio.wait_for`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_daemon_thread(call: Callable[[], T]) -> asyncio.Future[T]:
    """Start ``call`` on a new daemon thread; its result, as a future of the running loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    # Retrieved here so an answer nobody waits for any more is not logged as lost.
    future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = call()
        except BaseException as error:
            outcome: tuple[T | None, BaseException | None] = (None, error)
        else:
            outcome = (result, None)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name="bounded-call", daemon=True).start()
    return future
