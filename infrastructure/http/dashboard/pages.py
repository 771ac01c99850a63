"""The dashboard's front door: signing in and out, and the overview.

Server-rendered HTML (Jinja2, autoescaped), no JavaScript: every page works with forms and
links. Pages read through the same functions as the API (`Queries`, `Chronicle`,
`infrastructure.http.overview`), and show no customer identifier (mobile, email, external id).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from infrastructure.http import overview as data
from infrastructure.http.auth import matches_any
from infrastructure.http.dashboard.charts import Bar, Group, bar_chart, grouped_columns
from infrastructure.http.dashboard.sessions import COOKIE, csrf_matches, open_session
from infrastructure.http.dashboard.web import (
    CSRF_PROBLEM,
    PREFIX,
    SECURITY_HEADERS,
    read_form,
    render,
    same_origin,
    service_of,
    session_of,
    to_sign_in,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)


# --- signing in and out, the overview ----------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def overview_page(request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return render(request, "sign_in.html", session=None, error=None)
    service = service_of(request)
    day = data.today()
    found = await run_in_threadpool(data.overview, service, day=day)
    ends = {days: (day + timedelta(days=days)).isoformat() for days in data.WINDOWS}
    return render(
        request, "overview.html", session=session, charts=_charts(found), ends=ends, **found
    )


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    service = service_of(request)
    form = await read_form(request)
    token = form.get("token", "").strip()
    tokens = service.config.read_tokens
    if not same_origin(request):
        error = "That sign-in did not come from this dashboard's own page."
        return render(request, "sign_in.html", session=None, status=403, error=error)
    if not tokens:
        error = "The dashboard is off: the server has no read token (PARTNER_LEDGER_READ_TOKEN)."
        return render(request, "sign_in.html", session=None, status=401, error=error)
    if not matches_any(token, tokens):
        error = "That is not a read token this server accepts."
        return render(request, "sign_in.html", session=None, status=401, error=error)
    lifetime = service.config.dashboard_session_seconds
    response = RedirectResponse(PREFIX, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        COOKIE,
        open_session(token.encode("latin-1"), lifetime_seconds=lifetime),
        max_age=lifetime,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or service.config.secure_cookies,
    )
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    session = session_of(request)
    form = await read_form(request)
    if session is not None and not csrf_matches(session, form.get("csrf")):
        return render(request, "error.html", session=session, status=403, error=CSRF_PROBLEM)
    response = to_sign_in()
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


def _charts(found: dict[str, Any]) -> dict[str, Markup]:
    statuses = [Bar(row["status"] or "unknown", row["memberships"]) for row in found["statuses"]]
    tiers = [
        Bar(
            f"{row['partner_program_name'] or 'program'} #{row['partner_program_id']} · tier "
            f"{'none' if row['tier_number'] is None else row['tier_number']}",
            row["memberships"],
        )
        for row in found["tiers"]
    ]
    months = [Group(row["month"], (row["links"], row["delinks"])) for row in found["activity"]]
    return {
        "statuses": bar_chart(
            statuses, chart_id="chart-statuses", title="Memberships by status", kind="status"
        ),
        "tiers": bar_chart(
            tiers,
            chart_id="chart-tiers",
            title="Linked memberships by program and tier",
            kind="tier",
        ),
        "activity": grouped_columns(
            months,
            series=("link", "delink"),
            chart_id="chart-activity",
            title="Links and delinks per month, last 12 months",
        ),
    }
