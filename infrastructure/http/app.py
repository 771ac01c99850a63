"""The ASGI application: routes, error answers, access log, and the per-worker service.

`create_app` builds it from explicit settings; `app_from_environment` is the factory uvicorn's
worker processes call (``serve --workers N`` exports the settings as ``PARTNER_LEDGER_*``).
Nothing is opened at import time: the ledger is opened by the lifespan, once per worker.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import StorageUnavailableError
from infrastructure.http import dashboard, docs_page, operations, overview, reads
from infrastructure.http.config import HttpConfig
from infrastructure.http.logs import ACCESS_LOG
from infrastructure.http.metrics import Metrics
from infrastructure.http.protocol import Guard
from infrastructure.http.schemas import LedgerJSONResponse, ValidationProblem
from infrastructure.http.service import running_service
from infrastructure.http.supervision import exit_with_parent
from infrastructure.http.webhooks import PATH, WebhookFastPath, unavailable, webhook_router
from infrastructure.settings import Settings
from infrastructure.storage_errors import TRANSIENT_ERRORS, ErrorTypes

DESCRIPTION = """\
Receives Capillary partner-program notifications and answers queries about memberships.

Every delivered payload is accounted for: recorded (200, with its position), a duplicate (200),
or quarantined with its raw bytes (200 with the reason and quarantine id; 400 when the body is
not JSON). A 200 or 400 is sent only after the commit. 429 (or 503, as configured) with
Retry-After means nothing was confirmed: retrying is always safe, since duplicates are recognised.
"""
# FastAPI's own OpenTelemetry is on by default: it traces every request (spans carry the path,
# which holds customer ids), records exception messages, and with FASTAPI_OTEL_AUTO_CONFIGURE
# in the environment exports all of it to whatever OTEL_EXPORTER_OTLP_ENDPOINT names. What the
# service tells the outside is what our validated settings say (the access log, /metrics): off.
NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}


def create_app(config: HttpConfig, settings: Settings) -> FastAPI:
    """The service, configured; it opens its ledger when the server starts it."""
    config.check()
    metrics = Metrics()
    Guard.configure(
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
        version=version("partner-ledger"),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=NO_TELEMETRY,
    )
    webhooks = webhook_router(config)
    app.include_router(webhooks)
    app.include_router(reads.router)
    app.include_router(operations.router)
    app.include_router(overview.router)
    dashboard.install(app)
    app.include_router(docs_page.router)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    unavailable_errors: ErrorTypes = (StorageUnavailableError, *TRANSIENT_ERRORS)
    for error in unavailable_errors:
        app.add_exception_handler(error, database_unavailable)
    (webhook,) = (r for r in webhooks.routes if isinstance(r, APIRoute) and r.path == PATH)
    app.add_middleware(WebhookFastPath, endpoint=webhook.endpoint, route=webhook)
    app.add_middleware(AccessLog)
    return app


def app_from_environment() -> FastAPI:
    """The app of one worker process, configured from ``PARTNER_LEDGER_*``."""
    exit_with_parent()
    return create_app(HttpConfig(), Settings())


def _sentence(error: dict[str, Any]) -> str:
    """One pydantic error as a sentence: where, what is wrong, what was given."""
    place, *path = error.get("loc", ()) or ("request",)
    name = ".".join(str(part) for part in path) or str(place)
    where = {"query": "query parameter", "path": "path parameter"}.get(str(place), str(place))
    message = str(error.get("msg", "is not valid"))
    message = message[0].lower() + message[1:]
    given = f" (got {error['input']!r})" if "input" in error and error["input"] is not None else ""
    return f"{where} {name}: {message}{given}."


async def _invalid_request(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    sentences = [_sentence(item) for item in error.errors()]
    return LedgerJSONResponse({"detail": " ".join(sentences), "errors": sentences}, 422)


async def _http_error(request: Request, error: Exception) -> Response:
    """422s raised by our own checks answer the same shape as the validation errors."""
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 422:
        sentence = str(error.detail).rstrip(".") + "."
        return LedgerJSONResponse({"detail": sentence, "errors": [sentence]}, 422)
    return await http_exception_handler(request, error)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with our 422 body in place of pydantic's raw error list."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["ValidationProblem"] = ValidationProblem.model_json_schema()
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path in document.get("paths", {}).values():
        for operation in path.values():
            answer = operation.get("responses", {}).get("422")
            if answer is not None:
                answer["description"] = "Bad parameters: one sentence per field"
                answer["content"] = {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/ValidationProblem"}
                    }
                }
    app.openapi_schema = document
    return document


class AccessLog:
    """One line per request with the route's template, never the path itself: paths hold
    customer ids, and query strings are not logged either. Deliveries answered 200 are the
    exception: the writer says them in one line per commit (`logs.committed_group`), since
    a line per delivery was a tenth of the webhook's throughput at 64 senders."""

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
            if status != 200 or route != PATH:  # a delivery answered 200: in its group's line
                ACCESS_LOG.info(
                    "%s %s %d %.1f ms",
                    scope["method"],
                    route,
                    status,
                    (time.perf_counter() - started) * 1000,
                )
