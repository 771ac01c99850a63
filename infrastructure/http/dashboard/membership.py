"""The membership page: look one up, its state now or at a moment, its history as a timeline."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from domain.errors import MembershipNotFoundError
from domain.history import Chronicle
from domain.keys import MembershipKey
from domain.ledger import iso, membership_record
from infrastructure.http.dashboard.web import (
    PREFIX,
    FormError,
    identifier,
    render,
    service_of,
    session_of,
    to_sign_in,
)
from infrastructure.http.params import moment
from infrastructure.http.service import Service

router = APIRouter(prefix=PREFIX, include_in_schema=False)


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
    session = session_of(request)
    if session is None:
        return to_sign_in()
    query = request.query_params
    names = ("org", "customer", "program", "as_of", "as_known_at")
    form = {name: query.get(name, "") for name in names}
    context: dict[str, Any] = {"form": form, "error": None, "memberships": None, "found": None}
    if not (form["org"] or form["customer"] or form["program"]):
        return render(request, "membership.html", session=session, **context)
    try:
        org = identifier(form["org"], "org", required=True)
        customer = identifier(form["customer"], "customer", required=True)
        program = identifier(form["program"], "program")
        as_of = _moment(form["as_of"], "as of")
        as_known_at = _moment(form["as_known_at"], "as known at")
    except FormError as error:
        context["error"] = str(error).capitalize() + "."
        return render(request, "membership.html", session=session, status=400, **context)
    assert org is not None and customer is not None
    service = service_of(request)
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
    key = MembershipKey(org, customer, program)
    entries = chronicle.history(key)
    if as_of is None and as_known_at is None:
        state = service.queries.membership(org, customer, program)
        if state is None:  # recorded, not yet in the view: fold it
            state = membership_record(chronicle.state_at(key))
    else:
        state = membership_record(chronicle.state_at(key, as_of=as_of, as_known_at=as_known_at))
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
