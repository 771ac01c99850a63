"""The ASGI application: routes, error answers, access log, and the per-worker service.

`create_app` builds it from explicit settings; `app_from_environment` is the factory uvicorn's
worker processes call (``serve --workers N`` exports the settings as ``PARTNER_LEDGER_*``).
Nothing is opened at import time: the ledger is opened by the lifespan, once per worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import StorageUnavailableError
from infrastructure.http import dashboard, operations, overview, reads
from infrastructure.http.config import HttpConfig
from infrastructure.http.metrics import Metrics
from infrastructure.http.protocol import GuardedH11Protocol
from infrastructure.http.schemas import LedgerJSONResponse
from infrastructure.http.service import running_service
from infrastructure.http.supervision import exit_with_parent
from infrastructure.http.webhooks import unavailable, webhook_router
from infrastructure.settings import Settings

DESCRIPTION = """\
Receives Capillary partner-program notifications and answers queries about memberships.

Every delivered payload is accounted for: recorded (200, with its position), a duplicate (200),
or quarantined with its raw bytes (200 with the reason and quarantine id; 400 when the body is
not JSON). A 200 or 400 is sent only after the commit. 429 (or 503, as configured) with
Retry-After means nothing was confirmed: retrying is always safe, since duplicates are recognised.
"""
access_log = logging.getLogger("partner_ledger.http.access")


def create_app(config: HttpConfig, settings: Settings) -> FastAPI:
    """The service, configured; it opens its ledger when the server starts it."""
    config.check()
    metrics = Metrics()
    GuardedH11Protocol.configure(
        max_connections=config.max_connections,
        request_read_seconds=config.request_read_seconds,
        transient_status=config.transient_status,
        retry_after_seconds=config.retry_after_seconds,
    )

    async def database_unavailable(request: Request, error: Exception) -> LedgerJSONResponse:
        return unavailable(config, "the ledger database is unavailable; retry later")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running_service(config, settings, metrics) as service:
            app.state.service = service
            yield

    app = FastAPI(
        title="Partner membership ledger",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(webhook_router(config))
    app.include_router(reads.router)
    app.include_router(operations.router)
    app.include_router(overview.router)
    dashboard.install(app)
    for error in (
        StorageUnavailableError,
        OperationalError,
        InterfaceError,
        psycopg.OperationalError,
    ):
        app.add_exception_handler(error, database_unavailable)
    app.add_middleware(AccessLog)
    return app


def app_from_environment() -> FastAPI:
    """The app of one worker process, configured from ``PARTNER_LEDGER_*``."""
    exit_with_parent()
    return create_app(HttpConfig(), Settings())


class AccessLog:
    """One line per request with the route's template, never the path itself: paths hold
    customer ids, and query strings are not logged either."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            route = getattr(scope.get("route"), "path", "(no route)")
            access_log.info(
                "%s %s %d %.1f ms",
                scope["method"],
                route,
                status,
                (time.perf_counter() - started) * 1000,
            )
