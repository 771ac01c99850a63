"""The expiring page: filters, pages as the API pages them, and the whole window as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from infrastructure.http import overview as data
from infrastructure.http.dashboard.web import (
    PREFIX,
    SECURITY_HEADERS,
    FormError,
    identifier,
    render,
    service_of,
    session_of,
    to_sign_in,
)
from infrastructure.http.params import decode_cursor, encode_cursor
from projections.views import EXPIRY, EXPIRY_FIELDS

KINDS = ("membership", "tier", "scheduled")
PAGE_SIZES = (25, 50, 100, 500)
router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _date(value: str | None, name: str, default: date) -> date:
    text = (value or "").strip()
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FormError(f"{name} must be a date, YYYY-MM-DD") from None


def _expiring_filters(request: Request) -> dict[str, Any]:
    query = request.query_params
    kind = query.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise FormError(f"kind must be one of {', '.join(KINDS)}")
    start = _date(query.get("from"), "from", data.today())
    end = _date(query.get("to"), "to", start + timedelta(days=90))
    if end < start:
        raise FormError("to must not be before from")
    limit_text = query.get("limit") or "50"
    if limit_text not in {str(size) for size in PAGE_SIZES}:
        raise FormError(f"rows per page must be one of {', '.join(map(str, PAGE_SIZES))}")
    return {
        "org_id": identifier(query.get("org"), "org"),
        "partner_program_id": identifier(query.get("program"), "program"),
        "kind": kind,
        "start": start,
        "end": end,
        "limit": int(limit_text),
    }


def _filter_query(filters: dict[str, Any], **extra: Any) -> str:
    values = {
        "org": filters["org_id"],
        "program": filters["partner_program_id"],
        "kind": filters["kind"],
        "from": filters["start"].isoformat(),
        "to": filters["end"].isoformat(),
        "limit": filters["limit"],
    } | extra
    return urlencode({k: v for k, v in values.items() if v is not None})


def _windows() -> list[tuple[int, str]]:
    day = data.today()
    return [
        (days, f"{PREFIX}/expiring?from={day}&to={day + timedelta(days=days)}")
        for days in data.WINDOWS
    ]


@router.get("/expiring", response_class=HTMLResponse)
async def expiring_page(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return to_sign_in()
    query = request.query_params
    names = ("org", "program", "kind", "from", "to", "limit")
    form = {name: query.get(name, "") for name in names}
    try:
        filters = _expiring_filters(request)
        cursor = query.get("cursor")
        after = None
        if cursor:
            try:
                after = decode_cursor(cursor)
            except HTTPException:
                raise FormError("that page link is not one this dashboard gave out") from None
    except FormError as error:
        return render(
            request,
            "expiring.html",
            session=session,
            status=400,
            error=str(error).capitalize() + ".",
            form=form,
            kinds=KINDS,
            sizes=PAGE_SIZES,
            windows=_windows(),
            rows=[],
            next_url=None,
            csv_url=None,
            first_url=None,
            filters=None,
        )
    service = service_of(request)
    rows = await run_in_threadpool(lambda: service.queries.expiring(**filters, after=after))
    form |= {
        "from": filters["start"].isoformat(),
        "to": filters["end"].isoformat(),
        "limit": str(filters["limit"]),
    }
    next_url = None
    if len(rows) == filters["limit"]:
        next_url = f"{PREFIX}/expiring?{_filter_query(filters, cursor=encode_cursor(rows[-1]))}"
    return render(
        request,
        "expiring.html",
        session=session,
        error=None,
        form=form,
        kinds=KINDS,
        sizes=PAGE_SIZES,
        windows=_windows(),
        rows=rows,
        filters=filters,
        next_url=next_url,
        first_url=f"{PREFIX}/expiring?{_filter_query(filters)}" if cursor else None,
        csv_url=f"{PREFIX}/expiring.csv?{_filter_query(filters)}",
    )


@router.get("/expiring.csv")
async def expiring_csv(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return to_sign_in()
    try:
        filters = _expiring_filters(request)
    except FormError as error:
        return render(request, "error.html", session=session, status=400, error=str(error))
    filters.pop("limit")
    service = service_of(request)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPIRY_FIELDS, lineterminator="\n")
        writer.writeheader()
        after = None
        while True:
            rows = service.queries.expiring(**filters, limit=1000, after=after)
            for row in rows:
                writer.writerow({k: "" if v is None else v for k, v in row.items()})
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(rows) < 1000:
                return
            after = tuple(rows[-1][name] for name in EXPIRY.order_by)

    headers = SECURITY_HEADERS | {"Content-Disposition": 'attachment; filename="expiring.csv"'}
    return StreamingResponse(
        iterate_in_threadpool(lines()), media_type="text/csv; charset=utf-8", headers=headers
    )
