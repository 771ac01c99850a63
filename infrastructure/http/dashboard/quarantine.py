"""The quarantine page: entries with their payloads masked, and replay (operator token and
CSRF token) of those the current code accepts."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from domain.errors import LedgerError
from infrastructure.http import overview as data
from infrastructure.http.auth import matches_any
from infrastructure.http.dashboard.masking import masked_detail, masked_payload
from infrastructure.http.dashboard.sessions import Session, csrf_matches
from infrastructure.http.dashboard.web import (
    CSRF_PROBLEM,
    PREFIX,
    read_form,
    render,
    same_origin,
    service_of,
    session_of,
    to_sign_in,
)
from infrastructure.http.service import Service

QUARANTINE_PAGE = 25
router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _quarantine(
    service: Service, reason: str | None, include_resolved: bool, page: int
) -> dict[str, Any]:
    found = data.quarantine(
        service, reason=reason, include_resolved=include_resolved, page=page, size=QUARANTINE_PAGE
    )
    for entry in found["entries"]:
        entry["payload"] = masked_payload(entry.pop("raw"))
        entry["detail"] = masked_detail(entry["detail"])
    return found | {"page": page, "pages": max(-(-found["total"] // QUARANTINE_PAGE), 1)}


@router.get("/quarantine", response_class=HTMLResponse)
async def quarantine_page(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return to_sign_in()
    return await _quarantine_answer(request, session, message=None, status=200)


async def _quarantine_answer(
    request: Request, session: Session, *, message: str | None, status: int
) -> Response:
    query = request.query_params
    reason = query.get("reason") or None
    include_resolved = query.get("all") == "1"
    page_text = query.get("page") or "1"
    page = int(page_text) if page_text.isascii() and page_text.isdigit() else 1
    service = service_of(request)
    found = await run_in_threadpool(
        _quarantine, service, reason, include_resolved, min(max(page, 1), 10**6)
    )
    base = {"reason": reason, "all": "1" if include_resolved else None}
    return render(
        request,
        "quarantine.html",
        session=session,
        status=status,
        message=message,
        reason=reason,
        include_resolved=include_resolved,
        operator=bool(service.config.operator_tokens),
        page_url=lambda number: (
            f"{PREFIX}/quarantine?"
            + urlencode({k: v for k, v in (base | {"page": number}).items() if v is not None})
        ),
        **found,
    )


@router.post("/quarantine/replay", response_class=HTMLResponse)
async def replay(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return to_sign_in()
    form = await read_form(request)
    service = service_of(request)
    operators = service.config.operator_tokens
    if not same_origin(request) or not csrf_matches(session, form.get("csrf")):
        return await _quarantine_answer(request, session, message=CSRF_PROBLEM, status=403)
    if not operators:
        message = "Replay is off: the server has no operator token (PARTNER_LEDGER_OPERATOR_TOKEN)."
        return await _quarantine_answer(request, session, message=message, status=403)
    if not matches_any(form.get("operator_token", "").strip(), operators):
        message = "Replay needs the operator token: that one is missing or wrong."
        return await _quarantine_answer(request, session, message=message, status=403)
    entry = form.get("id", "")
    try:
        outcomes = await run_in_threadpool(service.ledger.replay_quarantined, [entry])
    except LedgerError as error:
        return await _quarantine_answer(request, session, message=str(error), status=404)
    (replayed, outcome), *_ = outcomes
    said = {
        "recorded": f"recorded at position {outcome.position}",
        "duplicate": "a duplicate of a recorded notification",
        "quarantined": f"still not accepted ({outcome.reason})",
    }.get(outcome.status, outcome.status)
    return await _quarantine_answer(
        request, session, message=f"Entry {replayed[:12]}: {said}.", status=200
    )
