"""For the operator and the orchestrator: ``/healthz``, ``/readyz``, ``/metrics``.

These carry no customer data and need no token, so probes and Prometheus can reach them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from domain.errors import first_line
from infrastructure.http.metrics import CONTENT_TYPE
from infrastructure.http.schemas import LedgerJSONResponse
from infrastructure.http.service import Service

router = APIRouter(tags=["operations"])
READY_SECONDS = 0.8  # /readyz answers within 1 s, whatever the database does
logger = logging.getLogger("partner_ledger.http")


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


@router.get("/healthz", summary="The process is up", response_model=None)
async def healthz() -> LedgerJSONResponse:
    return LedgerJSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    summary="Ready: taking notifications, database reachable, views within the lag limit",
    response_model=None,
    responses={503: {"description": "Not ready (draining, database unreachable, views behind)"}},
)
async def readyz(request: Request) -> LedgerJSONResponse:
    service = _service(request)
    if service.draining.is_set():
        return LedgerJSONResponse({"status": "draining"}, status_code=503)
    try:
        head, positions = await service.probe(timeout=READY_SECONDS)
    except TimeoutError:
        logger.warning("readiness: the database did not answer within %g s", READY_SECONDS)
        return LedgerJSONResponse({"status": "database unreachable"}, status_code=503)
    except Exception as error:  # unreachable, refused: not ready
        # The reason names hosts and databases: for the log, not for unauthenticated callers.
        logger.warning("readiness: the database is unreachable: %s", first_line(error))
        return LedgerJSONResponse({"status": "database unreachable"}, status_code=503)
    limit = service.config.max_view_lag_events
    views: dict[str, Any] = {
        name: {
            "position": position,
            "lag_events": None if position is None else max(head - position, 0),
        }
        for name, position in positions.items()
    }
    ready = all(v["lag_events"] is not None and v["lag_events"] <= limit for v in views.values())
    body = {"status": "ready" if ready else "views behind", "head": head, "views": views}
    return LedgerJSONResponse(body, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_model=None,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    service = _service(request)
    text = await asyncio.to_thread(service.metrics.render, service.store_state)
    return Response(text, media_type=CONTENT_TYPE)
