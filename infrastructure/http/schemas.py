"""What the HTTP service answers, as pydantic models for the OpenAPI document, and examples of
what Capillary sends (one per payload shape). Customer identifiers in the examples are fake.

The answers themselves are rendered exactly as the CLI's ``--json`` prints them (see
`LedgerJSONResponse`); these models describe them, they do not re-validate them.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from domain.errors import Reason
from domain.membership import Status
from domain.rows import OutcomeStatus


class LedgerJSONResponse(JSONResponse):
    """JSON rendered as the CLI renders it (``ensure_ascii=False``, ``default=str``)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, default=str).encode("utf-8")


class Receipt(BaseModel):
    """What became of one delivered notification."""

    status: OutcomeStatus
    position: int | None = Field(None, description="recorded: its position in the log")
    reason: Reason | None = Field(None, description="quarantined: the reason code")
    id: str | None = Field(None, description="quarantined: the quarantine entry's id")
    detail: str | None = Field(None, description="quarantined: every offending field")


class Problem(BaseModel):
    """An error: one sentence."""

    detail: str


class ValidationProblem(BaseModel):
    """A request with bad parameters: one sentence per offending field."""

    detail: str = Field(description="every sentence below, joined")
    errors: list[str] = Field(description="one sentence per field")


class Membership(BaseModel):
    """One membership, as ``partner-ledger membership --json`` prints it."""

    org_id: int
    customer_id: int
    partner_program_id: int
    loyalty_program_id: int | None
    partner_program_name: str | None
    partner_program_type: str | None
    status: Status | None
    link_inferred: bool
    linked_at: str | None
    delinked_at: str | None
    tier_number: int | None
    tier_expiry_date: str | None
    tier_expiry_at: str | None
    membership_number: str | None
    membership_expiry_date: str | None
    membership_expiry_at: str | None
    scheduled_expiry_date: str | None
    last_update_type: str | None
    last_reminder_at: str | None
    event_count: int


class HistoryEntry(BaseModel):
    """One recorded event, as ``partner-ledger history --json`` prints it."""

    position: int | None
    version: int
    recorded_at: str
    occurred_at: str
    event: str
    kind: str
    update_type: str | None
    source: dict[str, Any]
    expiry_instants: dict[str, str | None]
    changes: dict[str, list[Any]]
    applied: bool
    anomalies: list[str]
    late: bool


class ExpiryRow(BaseModel):
    """One expiry date, as ``partner-ledger expiring --json`` prints it."""

    org_id: int
    customer_id: int
    partner_program_id: int
    kind: Literal["membership", "tier", "scheduled"]
    date: str


class TierCount(BaseModel):
    """LINKED memberships of one tier, as ``partner-ledger tiers --json`` prints it."""

    org_id: int
    partner_program_id: int
    tier_number: int | None
    memberships: int


_CUSTOMER = {
    "customerId": 354971193,
    "instore": {"mobile": "6500000001", "email": "customer@example.com"},
}
PAYLOAD_EXAMPLES: dict[str, dict[str, Any]] = {
    "A_envelope_linked": {
        "summary": "Shape A (envelope): partnerProgramLinked",
        "value": {
            "eventId": "1b049b7f-9363-464c-beaf-0c7c2f1f8a12",
            "eventType": "partnerProgramLinked",
            "consumerGroupId": None,
            "actionType": "START",
            "timeStamp": 1683871605623,
            "attributes": {
                "createdAt": 1683871605603,
                "eventName": "partnerProgramLinked",
                "orgId": 151197,
                "refId": "151197_C3zPfmvsZL",
                "apiRequestId": "5ba71b8f-5557-4a68-86b9-8e597722ce16",
                "data": {
                    "customerIdentifiers": _CUSTOMER,
                    "entityInformation": {"entityType": "USER", "entityId": 354971193},
                    "loyaltyProgramId": 1115,
                    "partnerProgramId": 45,
                    "partnerProgramName": "Drivers",
                    "partnerProgramType": "SUPPLEMENTARY",
                    "customerPartnerProgramDetails": {"membershipExpiryDate": "2027-05-12"},
                },
            },
        },
    },
    "B_flat_updated": {
        "summary": "Shape B (flat): partnerProgramUpdated",
        "value": {
            "eventName": "partnerProgramUpdated",
            "eventId": "caff89da-4c1c-4a5c-a27d-8f4f6f74f541",
            "orgId": 50191,
            "refId": "50191_esJyjQ23RQ",
            "apiRequestId": "95d1d0d76dda1565a3c2905f230c3975",
            "createdAt": 1622457292026,
            "data": {
                "customerIdentifiers": _CUSTOMER,
                "loyaltyProgramId": 855,
                "partnerProgramId": 25,
                "partnerProgramName": "Demo-p1",
                "partnerProgramType": "EXTERNAL",
                "updateType": "UPGRADE",
                "customerPartnerProgramDetails": {
                    "partnerTierExpiryDate": "2021-06-29",
                    "partnerTierNumber": 2,
                    "membershipNumber": "123-asa3",
                },
            },
            "loyaltyEventId": None,
        },
    },
    "C_search_key_reminder": {
        "summary": "Shape C (flat with eventSearchKey): supplementaryMembershipExpiryReminder",
        "value": {
            "eventName": "supplementaryMembershipExpiryReminder",
            "eventSearchKey": "data.customerIdentifiers.customerId",
            "orgId": 50583,
            "refId": "50583_f45a4dad-9b78-49eb-a8bd-454ef11e46f1_b1",
            "apiRequestId": "ae2e514d-7734-4c58-978c-98e48af1654b",
            "createdAt": 1696649806886,
            "data": {
                "customerIdentifiers": _CUSTOMER,
                "loyaltyProgramId": 1377,
                "partnerProgramId": 184,
                "partnerProgramName": "Gold Circle",
                "scheduledExpiryDate": "2023-10-21",
            },
        },
    },
    "C_renewal_job": {
        "summary": "Shape C: PP_EXPIRY_JOB (recorded as a RENEW update)",
        "value": {
            "eventName": "PP_EXPIRY_JOB",
            "eventSearchKey": "data.customerIdentifiers.customerId",
            "orgId": 50583,
            "refId": "50583_huvzkxsPNe",
            "apiRequestId": "76f1e944-7bf1-45f7-981d-bb018b3592a5",
            "createdAt": 1711752109370,
            "data": {
                "customerIdentifiers": {"customerId": 248536438},
                "loyaltyProgramId": 1377,
                "partnerProgramId": 184,
                "partnerProgramName": "Gold Circle",
                "partnerProgramType": "SUPPLEMENTARY",
                "updateType": "RENEW",
                "customerPartnerProgramDetails": {"membershipExpiryDate": "2024-09-26 00:00:00"},
            },
        },
    },
}

RECEIPT_EXAMPLES: dict[str, dict[str, Any]] = {
    "recorded": {"value": {"status": "recorded", "position": 42}},
    "duplicate": {"value": {"status": "duplicate"}},
    "quarantined": {
        "value": {
            "status": "quarantined",
            "reason": "MISSING_FIELD",
            "id": "3f2a9c01d4e5b6a7",
            "detail": "data.partnerProgramId is required",
        }
    },
}
NOT_JSON_EXAMPLE = {
    "status": "quarantined",
    "reason": "NOT_JSON",
    "id": "9b1c0d2e3f4a5b6c",
    "detail": "the body is not JSON (Expecting value: line 1 column 1 (char 0))",
}


# The header a transient answer carries (the webhook's and the reads' documents share it).
RETRY_AFTER = {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}
