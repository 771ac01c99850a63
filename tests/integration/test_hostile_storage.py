"""Hostile payloads through the ledger on both stores: every one accounted for, stored verbatim."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings

from domain.audit import Auditor
from domain.history import Chronicle
from domain.keys import MembershipKey
from domain.ledger import Ledger
from tests.hostile import SQL_METACHARACTERS, hostile_payloads


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=hostile_payloads())
def test_a_hostile_payload_is_recorded_a_duplicate_or_quarantined(
    ledger: Ledger, raw: bytes
) -> None:
    (outcome,) = ledger.receive([raw])
    assert outcome.status in {"recorded", "duplicate", "quarantined"}
    if outcome.status == "quarantined":
        assert outcome.reason and outcome.quarantine_id
        assert ledger.quarantine_entry(outcome.quarantine_id)["raw"] == raw


def test_sql_metacharacters_in_every_string_field_are_stored_verbatim(ledger: Ledger) -> None:
    for number, text in enumerate(SQL_METACHARACTERS):
        payload = {
            "eventName": "partnerProgramUpdated",
            "eventId": f"{text}-{number}",
            "orgId": 50191,
            "refId": text,
            "apiRequestId": text,
            "createdAt": 1622457292026,
            "data": {
                "customerIdentifiers": {
                    "customerId": 1000 + number,
                    "instore": {"mobile": "65 9068", "email": text},
                },
                "loyaltyProgramId": 855,
                "partnerProgramId": 25,
                "partnerProgramName": text,
                "partnerProgramType": text,
                "updateType": text,
                "customerPartnerProgramDetails": {"membershipNumber": text},
            },
        }
        (outcome,) = ledger.receive([json.dumps(payload).encode()])
        assert outcome.status == "recorded", outcome
        state = ledger.membership(MembershipKey(50191, 1000 + number, 25)).state
        stripped = text.strip()
        assert (state.partner_program_name, state.membership_number) == (stripped, stripped)
        assert state.last_update_type == stripped.upper()
        (entry,) = Chronicle(ledger).history(MembershipKey(50191, 1000 + number, 25))
        assert entry["source"]["ref_id"] == stripped
        assert entry["source"]["event_id"] == f"{text}-{number}"
        assert entry["identifiers"]["email"] == stripped
    assert Auditor(ledger.store).verify() == []
