"""The dashboard's pages: sign in, overview, membership, expiring (with CSV), quarantine.

Server-rendered HTML (Jinja2, autoescaped), no JavaScript: every page works with forms and
links. Pages read through the same functions as the API (`Queries`, `Chronicle`,
`infrastructure.http.overview`), and show no customer identifier (mobile, email, external id).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from domain.errors import LedgerError, MembershipNotFoundError
from domain.history import Chronicle
from domain.ledger import iso, membership_record
from infrastructure.http import overview as data
from infrastructure.http.auth import matches_any
from infrastructure.http.dashboard.charts import Bar, Group, bar_chart, grouped_columns
from infrastructure.http.dashboard.masking import masked_detail, masked_payload
from infrastructure.http.dashboard.sessions import (
    COOKIE,
    Session,
    csrf_matches,
    open_session,
    verify_session,
)
from infrastructure.http.params import decode_cursor, encode_cursor, moment
from infrastructure.http.service import Service
from projections.views import EXPIRY, EXPIRY_FIELDS

PREFIX = "/dashboard"
KINDS = ("membership", "tier", "scheduled")
PAGE_SIZES = (25, 50, 100, 500)
QUARANTINE_PAGE = 25
MAX_FORM_BYTES = 4096
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer, browsers send "Origin: null" on posts.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
router = APIRouter(prefix=PREFIX, include_in_schema=False)


class FormError(ValueError):
    """A value a person typed that the page cannot use: shown on the page, 400."""


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _session(request: Request) -> Session | None:
    return verify_session(request.cookies.get(COOKIE), _service(request).config.read_tokens)


def render(
    request: Request,
    template: str,
    *,
    session: Session | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    page = _templates.get_template(template).render(
        prefix=PREFIX, session=session, path=request.url.path, **context
    )
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)


def _to_sign_in() -> RedirectResponse:
    return RedirectResponse(PREFIX, status_code=303, headers=SECURITY_HEADERS)


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (small: a token, a CSRF token, an id)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "the form is too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _same_origin(request: Request) -> bool:
    """A form post from one of our own pages: browsers send Origin on every POST. Only the
    host is compared: behind a TLS proxy the scheme seen here may be plain HTTP."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


# --- signing in and out --------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def overview_page(request: Request) -> Response:
    session = _session(request)
    if session is None:
        return render(request, "sign_in.html", session=None, error=None)
    service = _service(request)
    day = data.today()
    found = await run_in_threadpool(data.overview, service, day=day)
    ends = {days: (day + timedelta(days=days)).isoformat() for days in data.WINDOWS}
    return render(
        request, "overview.html", session=session, charts=_charts(found), ends=ends, **found
    )


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    service = _service(request)
    form = await _form(request)
    token = form.get("token", "").strip()
    tokens = service.config.read_tokens
    if not _same_origin(request):
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
    session = _session(request)
    form = await _form(request)
    if session is not None and not csrf_matches(session, form.get("csrf")):
        return render(request, "error.html", session=session, status=403, error=_CSRF)
    response = _to_sign_in()
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


_CSRF = "This form has expired or did not come from this dashboard: reload the page and retry."


# --- overview ------------------------------------------------------------------------------


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


# --- membership ----------------------------------------------------------------------------


def _identifier(value: str | None, name: str, *, required: bool = False) -> int | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise FormError(f"{name} is required")
        return None
    if not text.isascii() or not text.isdigit() or int(text) > data.MAX_ID:
        raise FormError(f"{name} must be a whole number from 0 to {data.MAX_ID}")
    return int(text)


def _moment(value: str | None, name: str) -> Any:
    text = (value or "").strip()
    if not text:
        return None
    try:
        return moment(text, name)
    except HTTPException as error:
        raise FormError(str(error.detail)) from None


@router.get("/membership", response_class=HTMLResponse)
async def membership_page(request: Request) -> Response:
    session = _session(request)
    if session is None:
        return _to_sign_in()
    query = request.query_params
    names = ("org", "customer", "program", "as_of", "as_known_at")
    form = {name: query.get(name, "") for name in names}
    context: dict[str, Any] = {"form": form, "error": None, "memberships": None, "found": None}
    if not (form["org"] or form["customer"] or form["program"]):
        return render(request, "membership.html", session=session, **context)
    try:
        org = _identifier(form["org"], "org", required=True)
        customer = _identifier(form["customer"], "customer", required=True)
        program = _identifier(form["program"], "program")
        as_of = _moment(form["as_of"], "as of")
        as_known_at = _moment(form["as_known_at"], "as known at")
    except FormError as error:
        context["error"] = str(error).capitalize() + "."
        return render(request, "membership.html", session=session, status=400, **context)
    assert org is not None and customer is not None
    service = _service(request)
    if program is None:
        rows = await run_in_threadpool(service.queries.customer_memberships, org, customer)
        context["memberships"] = rows
        context["lookup"] = {"org": org, "customer": customer}
        if not rows:
            context["error"] = f"No membership for org {org}, customer {customer}."
        return render(
            request, "membership.html", session=session, status=200 if rows else 404, **context
        )
    try:
        found = await run_in_threadpool(
            _membership, service, org, customer, program, as_of, as_known_at
        )
    except MembershipNotFoundError as error:
        context["error"] = str(error).capitalize() + "."
        return render(request, "membership.html", session=session, status=404, **context)
    context["found"] = found
    return render(request, "membership.html", session=session, **context)


def _membership(
    service: Service, org: int, customer: int, program: int, as_of: Any, as_known_at: Any
) -> dict[str, Any]:
    """The membership's state (now, or at the moments asked) and its timeline."""
    chronicle = Chronicle(service.ledger)
    entries = chronicle.history(org, customer, program)
    if as_of is None and as_known_at is None:
        state = service.queries.membership(org, customer, program)
        if state is None:  # recorded, not yet in the view: fold it
            state = membership_record(chronicle.state_at(org, customer, program))
    else:
        state = membership_record(
            chronicle.state_at(org, customer, program, as_of=as_of, as_known_at=as_known_at)
        )
    for entry in entries:  # personal data: never on a page
        entry.pop("identifiers", None)
        entry.pop("identifiers_forgotten", None)
    timeline = sorted(entries, key=lambda e: (e["occurred_at"], e["version"]))
    return {
        "key": {"org": org, "customer": customer, "program": program},
        "state": state,
        "timeline": timeline,
        "as_of": None if as_of is None else iso(as_of),
        "as_known_at": None if as_known_at is None else iso(as_known_at),
    }


# --- expiring ------------------------------------------------------------------------------


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
        "org_id": _identifier(query.get("org"), "org"),
        "partner_program_id": _identifier(query.get("program"), "program"),
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
    session = _session(request)
    if session is None:
        return _to_sign_in()
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
    service = _service(request)
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
    session = _session(request)
    if session is None:
        return _to_sign_in()
    try:
        filters = _expiring_filters(request)
    except FormError as error:
        return render(request, "error.html", session=session, status=400, error=str(error))
    filters.pop("limit")
    service = _service(request)

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


# --- quarantine ----------------------------------------------------------------------------


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
    session = _session(request)
    if session is None:
        return _to_sign_in()
    return await _quarantine_answer(request, session, message=None, status=200)


async def _quarantine_answer(
    request: Request, session: Session, *, message: str | None, status: int
) -> Response:
    query = request.query_params
    reason = query.get("reason") or None
    include_resolved = query.get("all") == "1"
    page_text = query.get("page") or "1"
    page = int(page_text) if page_text.isascii() and page_text.isdigit() else 1
    service = _service(request)
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
    session = _session(request)
    if session is None:
        return _to_sign_in()
    form = await _form(request)
    service = _service(request)
    operators = service.config.operator_tokens
    if not _same_origin(request) or not csrf_matches(session, form.get("csrf")):
        return await _quarantine_answer(request, session, message=_CSRF, status=403)
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
