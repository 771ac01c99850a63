"""Hand-made notifications for the tests: shape A envelopes of one membership."""

from __future__ import annotations

import json

from domain.keys import MembershipKey


def shape_a(
    name: str,
    created_at: int,
    event_id: str,
    *,
    key: MembershipKey,
    details: dict[str, object],
    update_type: str | None = None,
) -> bytes:
    """A shape A notification ``name`` of the membership ``key`` (an EXTERNAL program of
    loyalty program 855), created at ``created_at`` (epoch ms)."""
    return json.dumps(
        {
            "eventName": name,
            "eventId": event_id,
            "orgId": key.org_id,
            "createdAt": created_at,
            "data": {
                "customerIdentifiers": {"customerId": key.customer_id},
                "loyaltyProgramId": 855,
                "partnerProgramId": key.partner_program_id,
                "partnerProgramType": "EXTERNAL",
                "updateType": update_type,
                "customerPartnerProgramDetails": details,
            },
        }
    ).encode()
