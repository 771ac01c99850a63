"""Tamper evidence: per-membership hash chains and a running digest of the whole log.

- Every stored event has a **chain hash**: SHA-256 over the previous event's chain hash (of the
  same membership; 64 zeros for the first), the membership id, the version, the topic and the
  stored state bytes. Editing an event's bytes, moving an event to another version or deleting
  one breaks the chain at that point.
- The **log digest** folds every event's chain hash in notification order:
  ``digest = SHA-256(previous digest, position, chain hash)``. Checkpoints of it are kept every
  N events; an operator can also publish ``DIGEST@POSITION`` elsewhere and later prove that the
  log up to that position is unchanged (this also catches a rewrite of whole chains, or the
  deletion of the newest events, which no stored checkpoint can).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final
from uuid import UUID

from domain.errors import DigestFormatError
from domain.keys import MembershipKey

GENESIS: Final = "0" * 64


def chain_hash(
    previous: str, *, membership_id: UUID, version: int, topic: str, state: bytes
) -> str:
    """The chain hash of one stored event."""
    digest = hashlib.sha256()
    digest.update(bytes.fromhex(previous))
    digest.update(membership_id.bytes)
    digest.update(version.to_bytes(8, "big"))
    digest.update(topic.encode())
    digest.update(b"\x00")
    digest.update(state)
    return digest.hexdigest()


def next_digest(previous: str, *, position: int, event_hash: str) -> str:
    """The log digest after one more event."""
    digest = hashlib.sha256()
    digest.update(bytes.fromhex(previous))
    digest.update(position.to_bytes(8, "big"))
    digest.update(bytes.fromhex(event_hash))
    return digest.hexdigest()


@dataclass(frozen=True)
class Break:
    """One place where the stored history is not what was written."""

    kind: str  # CONTENT_CHANGED, LINK_BROKEN, EVENT_MISSING, UNTRACKED_EVENT, DIGEST_MISMATCH,
    # HEAD_MISMATCH
    detail: str
    membership: MembershipKey | None = None
    membership_id: str | None = None
    version: int | None = None
    position: int | None = None
    expected: str | None = None
    found: str | None = None


def parse_anchor(text: str) -> tuple[str, int]:
    """``DIGEST@POSITION`` as published by ``partner-ledger digest``."""
    digest, _, position = text.strip().partition("@")
    if len(digest) != 64 or not position.isdigit():
        raise DigestFormatError(f"{text!r} is not DIGEST@POSITION (64 hex digits, an integer)")
    try:
        bytes.fromhex(digest)
    except ValueError:
        raise DigestFormatError(f"{digest!r} is not hexadecimal") from None
    return digest.lower(), int(position)
