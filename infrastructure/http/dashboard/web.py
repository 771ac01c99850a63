"""What every dashboard page shares: the templates, security headers, the session of a
request, small form bodies, and reading what a person typed."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from infrastructure.http.dashboard.sessions import COOKIE, Session, verify_session
from infrastructure.http.overview import MAX_ID
from infrastructure.http.service import Service

PREFIX = "/dashboard"
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


class FormError(ValueError):
    """A value a person typed that the page cannot use: shown on the page, 400."""


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def session_of(request: Request) -> Session | None:
    return verify_session(request.cookies.get(COOKIE), service_of(request).config.read_tokens)


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


def to_sign_in() -> RedirectResponse:
    return RedirectResponse(PREFIX, status_code=303, headers=SECURITY_HEADERS)


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body (small: a token, a CSRF token, an id)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "the form is too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def same_origin(request: Request) -> bool:
    """A form post from one of our own pages: browsers send Origin on every POST. Only the
    host is compared: behind a TLS proxy the scheme seen here may be plain HTTP."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


CSRF_PROBLEM = (
    "This form has expired or did not come from this dashboard: reload the page and retry."
)


def identifier(value: str | None, name: str, *, required: bool = False) -> int | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise FormError(f"{name} is required")
        return None
    if not text.isascii() or not text.isdigit() or int(text) > MAX_ID:
        raise FormError(f"{name} must be a whole number from 0 to {MAX_ID}")
    return int(text)
