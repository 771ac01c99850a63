"""Forgetting a customer: identifiers unreadable, everything else intact, nothing in logs."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from domain.audit import Auditor
from domain.history import Chronicle
from domain.keys import MembershipKey
from domain.ledger import Ledger, membership_record

MOBILE, EMAIL = "6590688093", "prestoul@yahoo.com.sg"


def linked(customer: int, created_at: int, *, tier: int = 1, event_id: str = "") -> bytes:
    return json.dumps(
        {
            "eventName": "partnerProgramLinked",
            "eventId": event_id or f"e-{customer}-{created_at}",
            "orgId": 151197,
            "createdAt": created_at,
            "data": {
                "customerIdentifiers": {
                    "customerId": customer,
                    "instore": {"mobile": MOBILE, "email": EMAIL},
                },
                "loyaltyProgramId": 1115,
                "partnerProgramId": 45,
                "partnerProgramType": "EXTERNAL",
                "customerPartnerProgramDetails": {"partnerTierNumber": tier},
            },
        }
    ).encode()


def stored_bytes(ledger: Ledger) -> bytes:
    recorder: Any = ledger.recorder
    rows = recorder.query(f"SELECT state FROM {recorder.events_table}")
    return b"".join(bytes(row["state"]) for row in rows)


def test_identifiers_are_never_stored_in_clear(ledger: Ledger) -> None:
    ledger.receive([linked(6809254, 1683871605603)])
    assert MOBILE.encode() not in stored_bytes(ledger)
    assert EMAIL.encode() not in stored_bytes(ledger)
    (entry,) = Chronicle(ledger).history(MembershipKey(151197, 6809254, 45))
    assert entry["identifiers"] == {"mobile": MOBILE, "email": EMAIL}


def test_forgetting_a_customer_keeps_history_counts_and_chains(ledger: Ledger) -> None:
    ledger.receive(
        [
            linked(6809254, 1683871605603),
            linked(6809254, 1683871700000, tier=2),
            linked(7000001, 1683871605603),
        ]
    )
    before = membership_record(ledger.membership(MembershipKey(151197, 6809254, 45)).state)
    before_bytes = stored_bytes(ledger)

    assert ledger.forget(org_id=151197, customer_id=6809254) is True

    history = Chronicle(ledger).history(MembershipKey(151197, 6809254, 45))
    assert [entry["identifiers"] for entry in history] == [None, None]
    assert all(entry["identifiers_forgotten"] for entry in history)
    assert [entry["changes"].get("tier_number") for entry in history] == [[None, 1], [1, 2]]
    assert membership_record(ledger.membership(MembershipKey(151197, 6809254, 45)).state) == before
    # The stored events did not change at all, so the chains still verify.
    assert stored_bytes(ledger) == before_bytes
    assert Auditor(ledger.store).verify() == []
    # Another customer is untouched.
    (other,) = Chronicle(ledger).history(MembershipKey(151197, 7000001, 45))
    assert other["identifiers"] == {"mobile": MOBILE, "email": EMAIL}


def test_identifiers_arriving_after_a_customer_was_forgotten_are_not_kept(ledger: Ledger) -> None:
    ledger.receive([linked(6809254, 1683871605603)])
    ledger.forget(org_id=151197, customer_id=6809254)
    ledger.receive([linked(6809254, 1683871900000, tier=3)])
    history = Chronicle(ledger).history(MembershipKey(151197, 6809254, 45))
    assert [entry["identifiers"] for entry in history] == [None, None]
    assert history[-1]["changes"]["tier_number"] == [1, 3]


def test_nothing_personal_reaches_the_logs(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ledger.receive([linked(6809254, 1683871605603), b'{"broken": "' + MOBILE.encode()])
    Chronicle(ledger).history(MembershipKey(151197, 6809254, 45))
    ledger.forget(org_id=151197, customer_id=6809254)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert MOBILE not in logged and EMAIL not in logged
