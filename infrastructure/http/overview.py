"""What the dashboard shows, as JSON: ``/overview``, ``/activity``, ``/quarantine``.

The dashboard's pages and these endpoints call the same functions here, which call the same
query methods as the rest of the API (`Queries`, `Projector.status`, the ledger store): no SQL
of their own. All need the read token, as the other read endpoints do.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from domain import services
from domain.export import quarantine_record
from domain.ledger import iso, parse_all
from domain.notifications import Notification
from infrastructure.http.auth import bearer_matches
from infrastructure.http.reads import fresh_enough
from infrastructure.http.schemas import LedgerJSONResponse
from infrastructure.http.service import Service
from projections.views import ACTIVITY, VIEWS, View

MONTHS = 12
WINDOWS = (30, 60, 90)
MAX_ID = 2**63 - 1


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def _read_token(request: Request) -> None:
    tokens = _service(request).config.read_tokens
    challenge = {"WWW-Authenticate": "Bearer"}
    if not tokens:
        raise HTTPException(
            401, "the read endpoints are off: set PARTNER_LEDGER_READ_TOKEN", headers=challenge
        )
    if not bearer_matches(request.headers.get("authorization"), tokens):
        raise HTTPException(401, "missing or wrong bearer token", headers=challenge)


router = APIRouter(tags=["dashboard"], dependencies=[Depends(_read_token)])


def today() -> date:
    return datetime.now(UTC).date()


def last_months(day: date, count: int = MONTHS) -> list[str]:
    """The ``count`` months up to and including ``day``'s, oldest first, as ``YYYY-MM``."""
    index = day.year * 12 + day.month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


def activity(
    service: Service,
    *,
    day: date,
    months: int = MONTHS,
    org_id: int | None = None,
    partner_program_id: int | None = None,
) -> list[dict[str, Any]]:
    """Links and delinks per month over the last ``months`` months (zeros included)."""
    wanted = last_months(day, months)
    rows = service.queries.activity(
        since_month=wanted[0], org_id=org_id, partner_program_id=partner_program_id
    )
    found = {(row["month"], row["kind"]): row["events"] for row in rows}
    return [
        {"month": m, "links": found.get((m, "link"), 0), "delinks": found.get((m, "delink"), 0)}
        for m in wanted
    ]


def health(service: Service) -> dict[str, Any]:
    """Events, lag per view, dead letters, open quarantine, the last digest checkpoint and
    when the last event was recorded."""
    views = service.projector.status()
    counts = services.counts(service.ledger)
    head = service.projector.last_position()
    checkpoints = services.checkpoints(service.ledger)
    last = checkpoints[-1] if checkpoints else None
    recorded_us = service.projector.log.oldest_recorded_after(head - 1) if head else None
    return {
        "events": counts["recorded"],
        "head": head,
        "views": [
            {
                "view": view["view"],
                "position": view["position"],
                "lag_events": view["lag_events"],
                "oldest_unprocessed_age_seconds": view["oldest_unprocessed_age_seconds"],
                "dead_letters": view["dead_letters"],
            }
            for view in views
        ],
        "dead_letters": sum(view["dead_letters"] for view in views),
        "quarantine_open": counts["quarantined"],
        "last_digest": None
        if last is None
        else {"digest": last["digest"], "position": last["position"], "events": last["events"]},
        "last_event_recorded_at": None
        if recorded_us is None
        else iso(datetime.fromtimestamp(recorded_us / 1e6, tz=UTC)),
    }


def overview(service: Service, *, day: date) -> dict[str, Any]:
    """Everything the overview page shows (blocking)."""
    names = service.queries.program_names()
    return {
        "date": day.isoformat(),
        "statuses": service.queries.statuses(),
        "tiers": [
            row | {"partner_program_name": names.get((row["org_id"], row["partner_program_id"]))}
            for row in service.queries.tiers()
        ],
        "activity": activity(service, day=day),
        "expiring": service.queries.expiring_counts(today=day, within_days=WINDOWS),
        "health": health(service),
    }


def quarantine(
    service: Service,
    *,
    reason: str | None = None,
    include_resolved: bool = False,
    page: int = 1,
    size: int = 100,
) -> dict[str, Any]:
    """One page of quarantine entries, oldest first, optionally of one reason: each with its
    raw bytes and whether the current code accepts it now (so a replay would record it), the
    number of entries in all, and the reasons present."""
    every = services.quarantined(service.ledger, include_resolved=include_resolved)
    chosen = [row for row in every if reason is None or row["reason"] == reason]
    shown = [quarantine_record(row) for row in chosen[(page - 1) * size : page * size]]
    payloads = services.quarantine_payloads(service.ledger, [entry["id"] for entry in shown])
    for entry in shown:
        entry["raw"] = payloads[entry["id"]]
        entry["accepted_now"] = entry["resolved_at"] is None and accepted_now(entry["raw"])
    return {
        "entries": shown,
        "total": len(chosen),
        "reasons": sorted({row["reason"] for row in every}),
    }


def accepted_now(raw: bytes) -> bool:
    """Whether the current code would record this payload (so a replay would pass)."""
    return isinstance(parse_all([raw])[0], Notification)


OptionalId = Annotated[int | None, Query(ge=0, le=MAX_ID)]
MinPosition = Annotated[
    int | None,
    Query(
        ge=0, le=MAX_ID, description="Wait until the views hold this position (read your writes)"
    ),
]


async def _fresh(service: Service, views: tuple[View, ...], min_position: int | None) -> None:
    """Return once every one of ``views`` can answer, as the other read endpoints do."""
    for view in views:
        await fresh_enough(service, view, min_position)


@router.get("/overview", summary="What the dashboard's overview shows", response_model=None)
async def get_overview(request: Request, min_position: MinPosition = None) -> LedgerJSONResponse:
    service = _service(request)
    await _fresh(service, tuple(VIEWS.values()), min_position)
    return LedgerJSONResponse(await run_in_threadpool(overview, service, day=today()))


@router.get(
    "/activity",
    summary="Links and delinks per month (UTC month of occurrence), the last N months",
    response_model=None,
)
async def get_activity(
    request: Request,
    org: OptionalId = None,
    program: OptionalId = None,
    months: Annotated[int, Query(ge=1, le=120)] = MONTHS,
    min_position: MinPosition = None,
) -> LedgerJSONResponse:
    service = _service(request)
    await _fresh(service, (ACTIVITY,), min_position)
    rows = await run_in_threadpool(
        lambda: activity(
            service, day=today(), months=months, org_id=org, partner_program_id=program
        )
    )
    return LedgerJSONResponse(rows)


@router.get(
    "/quarantine",
    summary="Quarantine entries, oldest first, a page at a time, each with whether the "
    "current code accepts it now (X-Total-Count: entries in all)",
    response_model=None,
)
async def get_quarantine(
    request: Request,
    reason: Annotated[str | None, Query(max_length=64)] = None,
    include_resolved: Annotated[bool, Query(alias="all")] = False,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LedgerJSONResponse:
    service = _service(request)
    found = await run_in_threadpool(
        lambda: quarantine(
            service, reason=reason, include_resolved=include_resolved, page=page, size=limit
        )
    )
    entries = [{k: v for k, v in e.items() if k != "raw"} for e in found["entries"]]
    return LedgerJSONResponse(entries, headers={"X-Total-Count": str(found["total"])})
