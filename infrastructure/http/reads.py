"""The read endpoints: the CLI's queries over HTTP, answering exactly what ``--json`` prints.

All need ``Authorization: Bearer <read token>``. Views are read as they are; a read that passes
``min_position=N`` (a position a POST returned) first waits, up to ``read_wait_seconds``, until
the view has folded in N, and answers 503 with ``Retry-After`` if it has not (it never answers
older data than asked for). ``history`` and the time-travel reads (``as_of``, ``as_known_at``)
fold the log itself, which is always current.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from domain.errors import MembershipNotFoundError, ViewBehindError
from domain.history import Chronicle
from domain.keys import MembershipKey
from domain.ledger import membership_record
from infrastructure.http.auth import matches_any
from infrastructure.http.params import (
    DAY,
    Id,
    MinPosition,
    Moment,
    OptionalId,
    day,
    decode_cursor,
    encode_cursor,
    moment,
    no_unknown_parameters,
)
from infrastructure.http.schemas import (
    RETRY_AFTER,
    ExpiryRow,
    HistoryEntry,
    LedgerJSONResponse,
    Membership,
    Problem,
    TierCount,
)
from infrastructure.http.service import Service
from projections.views import EXPIRY, MEMBERSHIPS, View

_bearer = HTTPBearer(auto_error=False, scheme_name="ReadToken")


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


async def require_read_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> None:
    tokens = _service(request).config.read_tokens
    challenge = {"WWW-Authenticate": "Bearer"}
    if not tokens:
        raise HTTPException(
            401, "the read endpoints are off: set PARTNER_LEDGER_READ_TOKEN", headers=challenge
        )
    if credentials is None or not matches_any(credentials.credentials, tokens):
        raise HTTPException(401, "missing or wrong bearer token", headers=challenge)


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "A position never recorded, or a bad cursor"},
    401: {"model": Problem, "description": "Missing or wrong bearer token"},
    503: {
        "model": Problem,
        "description": "Database unavailable, or the view not yet at min_position",
        "headers": RETRY_AFTER,
    },
}
router = APIRouter(
    tags=["queries"],
    dependencies=[Depends(require_read_token), Depends(no_unknown_parameters)],
    responses=ERRORS,
)


async def fresh_enough(service: Service, view: View, min_position: int | None) -> None:
    """Return once ``view`` can answer: live, and at ``min_position`` when one is given."""
    position = await service.watcher.position(view.name)
    if position is None:
        raise HTTPException(503, "the views are being built; retry shortly", {"Retry-After": "1"})
    if min_position is None or position >= min_position:
        return
    last = await run_in_threadpool(service.projector.last_position)
    if min_position > last:
        raise HTTPException(400, f"position {min_position} was never recorded (head is {last})")
    try:
        await service.watcher.wait_for(
            view.name, min_position, timeout=service.config.read_wait_seconds
        )
    except ViewBehindError as error:
        raise HTTPException(503, str(error), {"Retry-After": "1"}) from None


@router.get(
    "/memberships/{org}/{customer}/{program}",
    summary="One membership's state (membership --json), now or at a time",
    response_model=None,
    responses={200: {"model": Membership}, 404: {"model": Problem}},
)
async def membership(
    request: Request,
    org: Id,
    customer: Id,
    program: Id,
    as_of: Moment = None,
    as_known_at: Moment = None,
    min_position: MinPosition = None,
) -> LedgerJSONResponse:
    service = _service(request)
    when, known = moment(as_of, "as_of"), moment(as_known_at, "as_known_at")
    if when is not None or known is not None:
        try:
            state = await run_in_threadpool(
                lambda: Chronicle(service.ledger).state_at(
                    MembershipKey(org, customer, program), as_of=when, as_known_at=known
                )
            )
        except MembershipNotFoundError as error:
            raise HTTPException(404, str(error)) from None
        return LedgerJSONResponse(membership_record(state))
    await fresh_enough(service, MEMBERSHIPS, min_position)
    record = await run_in_threadpool(service.queries.membership, org, customer, program)
    if record is None:
        raise HTTPException(
            404, f"no membership for org {org}, customer {customer}, partner program {program}"
        )
    return LedgerJSONResponse(record)


@router.get(
    "/memberships/{org}/{customer}",
    summary="Every partner program of one customer (memberships ORG CUSTOMER --json)",
    response_model=None,
    responses={200: {"model": list[Membership]}, 404: {"model": Problem}},
)
async def customer_memberships(
    request: Request, org: Id, customer: Id, min_position: MinPosition = None
) -> LedgerJSONResponse:
    service = _service(request)
    await fresh_enough(service, MEMBERSHIPS, min_position)
    records = await run_in_threadpool(service.queries.customer_memberships, org, customer)
    if not records:
        raise HTTPException(
            404, f"the ledger holds no membership of customer {customer} in org {org}"
        )
    return LedgerJSONResponse(records)


@router.get(
    "/memberships/{org}/{customer}/{program}/history",
    summary="Every recorded event of one membership (history --json)",
    response_model=None,
    responses={200: {"model": list[HistoryEntry]}, 404: {"model": Problem}},
)
async def history(request: Request, org: Id, customer: Id, program: Id) -> LedgerJSONResponse:
    chronicle = Chronicle(_service(request).ledger)
    try:
        entries = await run_in_threadpool(chronicle.history, MembershipKey(org, customer, program))
    except MembershipNotFoundError as error:
        raise HTTPException(404, str(error)) from None
    return LedgerJSONResponse(entries)


@router.get(
    "/expiring",
    summary="Expiry dates in a window, by date (expiring --json), a page at a time",
    response_model=None,
    responses={
        200: {
            "model": list[ExpiryRow],
            "headers": {
                "Link": {"description": '<next page URL>; rel="next", when there may be more'},
                "X-Next-Cursor": {"description": "the cursor of the next page"},
            },
        }
    },
)
async def expiring(
    request: Request,
    org: OptionalId = None,
    program: OptionalId = None,
    kind: Literal["membership", "tier", "scheduled"] | None = None,
    start: Annotated[
        str | None, Query(alias="from", max_length=40, description=f"{DAY}; default today (UTC)")
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", max_length=40, description=f"{DAY}; default no end")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    min_position: MinPosition = None,
) -> LedgerJSONResponse:
    service = _service(request)
    first = day(start, "from") or datetime.now(UTC).date()
    last = day(end, "to")
    if last is not None and last < first:
        raise HTTPException(422, f"to: {last} is before from {first}: nothing can match")
    after = decode_cursor(cursor) if cursor is not None else None
    await fresh_enough(service, EXPIRY, min_position)
    rows = await run_in_threadpool(
        lambda: service.queries.expiring(
            org_id=org,
            partner_program_id=program,
            kind=kind,
            start=first,
            end=last,
            limit=limit,
            after=after,
        )
    )
    headers = {}
    if len(rows) == limit:
        following = encode_cursor(rows[-1])
        # Relative: the request's Host header is the sender's to choose, not ours to echo.
        page = request.url.include_query_params(cursor=following)
        headers["Link"] = f'<{page.path}?{page.query}>; rel="next"'
        headers["X-Next-Cursor"] = following
    return LedgerJSONResponse(rows, headers=headers)


@router.get(
    "/tiers",
    summary="LINKED memberships per org, program and tier (tiers --json)",
    response_model=None,
    responses={200: {"model": list[TierCount]}},
)
async def tiers(
    request: Request,
    org: OptionalId = None,
    program: OptionalId = None,
    min_position: MinPosition = None,
) -> LedgerJSONResponse:
    service = _service(request)
    await fresh_enough(service, MEMBERSHIPS, min_position)
    rows = await run_in_threadpool(
        lambda: service.queries.tiers(org_id=org, partner_program_id=program)
    )
    return LedgerJSONResponse(rows)
