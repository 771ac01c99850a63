"""uvicorn's HTTP protocols with the bounds uvicorn lacks: connections, request deadlines, framing.

uvicorn 0.54 has ``limit_concurrency`` (a bare 503 without ``Retry-After``, counted with tasks),
a keep-alive timeout that any single byte resets, and no deadline at all for a connection that
sends nothing or sends its headers or body a byte at a time. `Guard` adds, per worker process,
to either of uvicorn's protocols (`GuardedHttpToolsProtocol`, the default: httptools parses in
C; `GuardedH11Protocol`, pure Python, about 0.2 ms more CPU per request):

- at most ``max_connections`` open connections (kept below the open-file limit): one over the
  limit is answered the transient status with ``Retry-After`` and ``Connection: close``;
- a deadline of ``request_read_seconds`` from the moment a connection waits for a request until
  that request (headers and body) has fully arrived: past it, the connection is closed (408
  when no request has started, since nothing else can be answered then);
- a request with both ``Content-Length`` and ``Transfer-Encoding`` is answered 400 and the
  connection closed (h11 would read it as chunked: a request-smuggling door; httptools refuses
  it itself, with uvicorn's 400);
- on shutdown, a connection still sending its body is closed at once instead of holding the
  graceful phase.

`configure` sets the bounds once per process (`create_app` calls it); ``serve`` passes the
chosen class (`PROTOCOLS`, setting ``HTTP_PARSER``) to uvicorn as ``http=``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger("partner_ledger.http")
FD_RESERVE = 64  # files kept for the database pool, logs, the listener and over-limit answers
OVER_LIMIT_SECONDS = 1.0  # how long a connection over the limit may take to send its request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


@dataclass(frozen=True)
class Limits:
    max_connections: int = 500
    request_read_seconds: float = 10.0
    transient_status: int = 429
    retry_after_seconds: int = 5


def open_file_limit() -> int:
    """The soft open-file limit, raised to the hard limit when allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


class Guard:
    """The bounds of one HTTP/1.1 connection (see the module docstring), mixed into one of
    uvicorn's protocol classes: both keep the request under way in ``cycle`` (``more_body``,
    ``response_complete``) and call `on_response_complete` after each answer."""

    limits: ClassVar[Limits] = Limits()
    # What the protocol class it is mixed into provides:
    app: ASGIApp
    connections: set[Any]
    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    @classmethod
    def configure(
        cls,
        *,
        max_connections: int,
        request_read_seconds: float,
        transient_status: int,
        retry_after_seconds: int,
    ) -> None:
        """Set this process's bounds; ``max_connections`` is capped below the open-file
        limit, so that the process can always accept and answer."""
        ceiling = max(open_file_limit() - FD_RESERVE, 1)
        if max_connections > ceiling:
            logger.warning(
                "at most %d connections (the open-file limit leaves no room for %d)",
                ceiling,
                max_connections,
            )
        Guard.limits = Limits(
            max_connections=min(max_connections, ceiling),
            request_read_seconds=request_read_seconds,
            transient_status=transient_status,
            retry_after_seconds=retry_after_seconds,
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:  # an asyncio.Transport
        super().connection_made(transport)  # type: ignore[misc]
        limits = self.limits
        if len(self.connections) > limits.max_connections:
            self.app = _too_many_connections(limits)
            logger.warning(
                "over %d connections: answering new ones and closing them", limits.max_connections
            )
            self._arm(OVER_LIMIT_SECONDS)
        else:
            self.app = _framing_guard(self.app)
            self._arm(limits.request_read_seconds)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        cycle = self.cycle
        if cycle is not None and not cycle.more_body and not cycle.response_complete:
            self._disarm()  # the whole request is in: the app's own deadlines apply now

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._arm(self.limits.request_read_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def shutdown(self) -> None:
        if self.cycle is not None and self.cycle.more_body and not self.cycle.response_complete:
            self.transport.close()  # still sending its body: it will not finish in time
            return
        super().shutdown()  # type: ignore[misc]

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            # No request under way: the only answer possible is a 408 before closing.
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
        logger.info("closed a connection that sent no complete request in time")
        self.transport.close()


class GuardedHttpToolsProtocol(Guard, HttpToolsProtocol):
    """uvicorn's httptools protocol, bounded: the default."""


class GuardedH11Protocol(Guard, H11Protocol):
    """uvicorn's h11 protocol, bounded (``HTTP_PARSER=h11``)."""


PROTOCOLS: dict[str, type[asyncio.Protocol]] = {
    "httptools": GuardedHttpToolsProtocol,
    "h11": GuardedH11Protocol,
}


def _too_many_connections(limits: Limits) -> ASGIApp:
    body = json.dumps({"detail": "too many connections; retry later"}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(limits.retry_after_seconds).encode()),
        (b"connection", b"close"),
    ]

    async def answer(scope: Scope, receive: Any, send: Any) -> None:
        # Drop the body first (within the short deadline): closing on unread bytes would
        # reset the connection before the sender read the answer.
        while (await receive()).get("more_body", False):
            pass
        await send(
            {"type": "http.response.start", "status": limits.transient_status, "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})

    return answer


def _framing_guard(app: ASGIApp) -> ASGIApp:
    body = json.dumps(
        {"detail": "a request may not carry both Content-Length and Transfer-Encoding"}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]

    async def guarded(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            names = {name for name, _ in scope["headers"]}
            if b"content-length" in names and b"transfer-encoding" in names:
                await send({"type": "http.response.start", "status": 400, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded
