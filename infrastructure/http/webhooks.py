"""``POST /webhooks/capillary``: authenticate, bound the body, commit it, answer the policy.

- shutting down: the transient status (429 by default, or 503) with Retry-After, nothing read;
- missing or wrong webhook header (or signature, when configured): 401, nothing stored;
- body over ``max_body_bytes``: 413, nothing stored;
- not JSON: 400, the raw bytes quarantined (``NOT_JSON``);
- JSON that fails validation: 200 ``quarantined`` with reason and id, so it is not retried;
- recorded: 200 ``recorded`` with its position; duplicate: 200 ``duplicate``;
- database down, commit not confirmed in time, too many notifications or body bytes waiting:
  the transient status with Retry-After; the sender retries.

A 200 or 400 is sent only after the transaction holding the payload has committed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Security
from fastapi.security import APIKeyHeader
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.errors import Reason
from domain.ledger import Outcome
from infrastructure.http.auth import matches_any, signature_problem
from infrastructure.http.bodies import HeldBytes, OverBudgetError, read_at_most
from infrastructure.http.config import HttpConfig
from infrastructure.http.schemas import (
    NOT_JSON_EXAMPLE,
    PAYLOAD_EXAMPLES,
    RECEIPT_EXAMPLES,
    RETRY_AFTER,
    LedgerJSONResponse,
    Problem,
    Receipt,
)
from infrastructure.http.service import Service
from infrastructure.http.writer import TRANSIENT_ERRORS, WriterUnavailableError

REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A Capillary partner-program notification, byte for byte as sent. Any "
        "bytes are accepted and accounted for: recorded, duplicate, or quarantined.",
        "content": {
            "application/json": {
                "schema": {"type": "object", "additionalProperties": True},
                "examples": PAYLOAD_EXAMPLES,
            }
        },
    }
}


def responses(config: HttpConfig) -> dict[int | str, dict[str, Any]]:
    """The webhook's answers for the OpenAPI document, with the configured transient status."""
    return RESPONSES | {
        config.transient_status: {
            "model": Problem,
            "description": "Not committed (database unavailable, queue full, shutting down, "
            "commit not confirmed in time, over a connection or memory limit); retry later",
            "headers": RETRY_AFTER,
        }
    }


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": Receipt,
        "description": "Committed: recorded, duplicate, or quarantined (do not retry)",
        "content": {"application/json": {"examples": RECEIPT_EXAMPLES}},
    },
    400: {
        "model": Receipt,
        "description": "Not JSON: the raw bytes were quarantined (NOT_JSON)",
        "content": {"application/json": {"example": NOT_JSON_EXAMPLE}},
    },
    401: {"model": Problem, "description": "Missing or wrong credentials; nothing stored"},
    413: {"model": Problem, "description": "Body over the size limit; nothing stored"},
}


PATH = "/webhooks/capillary"
Endpoint = Callable[[Request], Awaitable[LedgerJSONResponse]]


def webhook_router(config: HttpConfig) -> APIRouter:
    """The webhook route, with the header name and secrets of ``config`` (what the OpenAPI
    document shows; `WebhookFastPath` serves the POSTs themselves)."""
    router = APIRouter(tags=["webhooks"])
    token_header = APIKeyHeader(
        name=config.webhook_header,
        auto_error=False,
        scheme_name="WebhookToken",
        description="The shared secret configured on Capillary's webhook",
    )
    router.add_api_route(
        PATH,
        webhook_endpoint(config),
        methods=["POST"],
        summary="Receive one Capillary notification",
        response_class=LedgerJSONResponse,
        response_model=None,
        responses=responses(config),
        openapi_extra=REQUEST_BODY,
        dependencies=[Security(token_header)],  # documents the scheme; checked in the endpoint
    )
    return router


def webhook_endpoint(config: HttpConfig) -> Endpoint:
    """The webhook's handler: the answers of the module docstring."""
    accepted = config.accepted_secrets
    signing_keys = config.signing_keys

    async def receive_notification(request: Request) -> LedgerJSONResponse:
        return await _receive(request, config, accepted=accepted, signing_keys=signing_keys)

    return receive_notification


class WebhookFastPath:
    """``POST /webhooks/capillary`` straight to its endpoint, past FastAPI's routing,
    dependency solving and exception middleware (about a third of the event loop's CPU per
    delivery). The endpoint reads nothing FastAPI would have checked: it takes the raw request
    and answers every outcome itself, and the route stays registered for the OpenAPI
    document, for other methods (405) and for the access log's route template."""

    def __init__(self, app: ASGIApp, *, endpoint: Endpoint, route: BaseRoute) -> None:
        self.app = app
        self.endpoint = endpoint
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST":
            scope["route"] = self.route
            response = await self.endpoint(Request(scope, receive))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _receive(
    request: Request,
    config: HttpConfig,
    *,
    accepted: tuple[bytes, ...],
    signing_keys: tuple[bytes, ...],
) -> LedgerJSONResponse:
    """One delivery: refused before its body is read, or read, committed and answered."""
    service: Service = request.app.state.service
    metrics = service.metrics
    if service.draining.is_set():
        metrics.count("unavailable")
        return unavailable(config, "the service is shutting down; nothing was recorded")
    if not matches_any(request.headers.get(config.webhook_header), accepted):
        metrics.count("unauthorized")
        return problem(401, f"missing or wrong {config.webhook_header} header")
    started = time.perf_counter()
    held = HeldBytes(service.writer.budget)
    try:
        answer = await _read_and_commit(request, config, service, held, signing_keys)
    finally:
        metrics.ingest_seconds.observe(time.perf_counter() - started)
        held.release()
    if isinstance(answer, LedgerJSONResponse):
        return answer
    metrics.count(answer.status, answer.reason if answer.status == "quarantined" else None)
    status = 400 if answer.reason == Reason.NOT_JSON else 200
    return LedgerJSONResponse(receipt(answer), status_code=status)


async def _read_and_commit(
    request: Request,
    config: HttpConfig,
    service: Service,
    held: HeldBytes,
    signing_keys: tuple[bytes, ...],
) -> Outcome | LedgerJSONResponse:
    """The body's outcome once committed, or the answer that says why it was not."""
    metrics = service.metrics
    try:
        body = await read_at_most(request, config.max_body_bytes, held)
    except ClientDisconnect:  # the sender gave up (or was too slow) mid-body
        return problem(400, "the request body was not received in full")
    except OverBudgetError:
        metrics.count("unavailable")
        # Not read, and the connection kept: uvicorn drops the rest of the body as it arrives
        # (closing on unread bytes would reset the connection, and the sender would never
        # see the Retry-After).
        return unavailable(
            config, "too many notification bytes are waiting to be committed; nothing was stored"
        )
    if body is None:
        metrics.count("too_large")
        return problem(
            413,
            f"the body is larger than {config.max_body_bytes} bytes; nothing was stored",
            headers={"Connection": "close"},
        )
    if signing_keys:
        reason = signature_problem(signing_keys, request.headers, body)
        if reason is not None:
            metrics.count("unauthorized")
            return problem(401, f"the Standard Webhooks signature does not verify: {reason}")
    try:
        return await service.writer.submit(body, timeout=config.commit_timeout_seconds)
    except WriterUnavailableError as error:
        metrics.count("unavailable")
        return unavailable(config, f"{error}; resending is safe")
    except TRANSIENT_ERRORS:
        metrics.count("unavailable")
        return unavailable(config, "the ledger database is unavailable; nothing was recorded")


def receipt(outcome: Outcome) -> dict[str, Any]:
    """The answer's body: ``{"status": ...}`` and what the sender or operator needs."""
    if outcome.status == "recorded":
        return {"status": "recorded", "position": outcome.position}
    if outcome.status == "duplicate":
        return {"status": "duplicate"}
    return {
        "status": "quarantined",
        "reason": outcome.reason,
        "id": outcome.quarantine_id,
        "detail": outcome.detail,
    }


def problem(
    status: int, detail: str, *, headers: dict[str, str] | None = None
) -> LedgerJSONResponse:
    return LedgerJSONResponse({"detail": detail}, status_code=status, headers=headers)


def unavailable(config: HttpConfig, detail: str) -> LedgerJSONResponse:
    """Our own transient failure: the configured status (429 or 503) with Retry-After."""
    return problem(
        config.transient_status, detail, headers={"Retry-After": str(config.retry_after_seconds)}
    )
