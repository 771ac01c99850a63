"""Dashboard sessions: a signed cookie, nothing stored on the server.

A session cookie is ``v1.<expiry>.<nonce>.<signature>``: HMAC-SHA256 over the first three
parts, keyed by a key derived from the read token the session was opened with. Every worker
derives the same key from the same token, so any worker accepts any worker's cookie; when that
token is no longer configured (rotated out), no key verifies the cookie and the session is over.
The CSRF token of a session is another HMAC of its nonce under the same key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

COOKIE = "partner_ledger_session"
_VERSION = "v1"
_SESSION_LABEL = b"partner-ledger dashboard session v1"


@dataclass(frozen=True)
class Session:
    """A verified session: when it ends and its CSRF token."""

    expires_at: int
    csrf_token: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _key(read_token: bytes) -> bytes:
    return hmac.new(read_token, _SESSION_LABEL, hashlib.sha256).digest()


def _sign(key: bytes, message: str) -> str:
    return _b64(hmac.new(key, message.encode(), hashlib.sha256).digest())


def _csrf(key: bytes, nonce: str) -> str:
    return _sign(key, f"csrf.{nonce}")


def open_session(read_token: bytes, *, lifetime_seconds: int, now: float | None = None) -> str:
    """A new session cookie value, for a read token that has just been checked."""
    expires_at = int(time.time() if now is None else now) + lifetime_seconds
    message = f"{_VERSION}.{expires_at}.{secrets.token_urlsafe(18)}"
    return f"{message}.{_sign(_key(read_token), message)}"


def verify_session(
    cookie: str | None, read_tokens: Sequence[bytes], *, now: float | None = None
) -> Session | None:
    """The session a cookie carries, or None when it is missing, forged, expired, or was
    opened with a read token that is no longer configured."""
    if not cookie or len(cookie) > 256:
        return None
    parts = cookie.split(".")
    if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isdigit():
        return None
    message, presented = ".".join(parts[:3]), parts[3].encode()
    expires_at = int(parts[1])
    found: bytes | None = None
    for token in read_tokens:  # every configured token is tried: the time says nothing
        key = _key(token)
        if hmac.compare_digest(_sign(key, message).encode(), presented):
            found = key
    if found is None or expires_at <= (time.time() if now is None else now):
        return None
    return Session(expires_at=expires_at, csrf_token=_csrf(found, parts[2]))


def csrf_matches(session: Session, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(
        session.csrf_token.encode(), presented.encode("utf-8", "replace")
    )
