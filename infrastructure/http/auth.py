"""Who may call: the webhook header, Standard Webhooks signatures, the read bearer token.

Every comparison is constant-time (`hmac.compare_digest`) and tries every accepted value, so
the time taken says nothing about which secret came close. Nothing here logs a credential.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

SIGNATURE_TOLERANCE_SECONDS = 300
_MAX_TIMESTAMP_DIGITS = 12


def matches_any(presented: str | None, accepted: Sequence[bytes]) -> bool:
    """Whether a header value equals one of the accepted secrets."""
    if presented is None:
        return False
    # Starlette decodes header bytes as latin-1: encoding back gives the bytes sent.
    candidate = presented.encode("latin-1")
    matched = False
    for secret in accepted:
        matched |= hmac.compare_digest(candidate, secret)
    return matched


def bearer_matches(authorization: str | None, accepted: Sequence[bytes]) -> bool:
    """Whether an ``Authorization: Bearer <token>`` header carries an accepted token."""
    if authorization is None:
        return False
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return matches_any(token.strip(), accepted)


def signature_problem(
    keys: Sequence[bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
) -> str | None:
    """Why a Standard Webhooks signature does not verify, or None when it does.

    The signed content is ``{webhook-id}.{webhook-timestamp}.{raw body}`` (HMAC-SHA256, ``v1``);
    ``webhook-signature`` is a space-separated list of ``v1,<base64>``, so a sender can sign
    with an old and a new key while rotating.
    """
    message_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not message_id or not stamp or not signatures:
        return "the webhook-id, webhook-timestamp and webhook-signature headers are required"
    stamp = stamp.strip()
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > _MAX_TIMESTAMP_DIGITS:
        return "webhook-timestamp is not a number of seconds"
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > SIGNATURE_TOLERANCE_SECONDS:
        return "webhook-timestamp is more than 5 minutes away from now"
    signed = message_id.encode("latin-1") + b"." + stamp.encode() + b"." + body
    expected = [base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()) for key in keys]
    matched = False
    for entry in signatures.split():
        version, _, value = entry.partition(",")
        if version != "v1":
            continue
        candidate = value.encode("latin-1")
        for digest in expected:
            matched |= hmac.compare_digest(candidate, digest)
    return None if matched else "no webhook-signature matches"


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """A ``webhook-signature`` value for ``body``: what a signing sender computes."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return f"v1,{digest}"
