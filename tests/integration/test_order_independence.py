"""Through the whole ingest path: any order, any duplication, any batching, same state."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.keys import MembershipKey
from domain.ledger import Ledger, membership_record
from domain.membership import fold_steps
from domain.snapshots import decode_snapshot

CUSTOMERS = itertools.count(10_000_000)
BASE_MS = 1_700_000_000_000


@st.composite
def membership_histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One membership's notifications as payload dicts, with distinct occurrence times."""
    size = draw(st.integers(min_value=1, max_value=7))
    seconds = sorted(draw(st.sets(st.integers(0, 100_000), min_size=size, max_size=size)))
    payloads = []
    for second in seconds:
        kind = draw(
            st.sampled_from(
                [
                    "partnerProgramLinked",
                    "partnerProgramUpdated",
                    "partnerProgramDelinked",
                    "supplementaryMembershipExpiryReminder",
                    "PP_EXPIRY_JOB",
                ]
            )
        )
        data: dict[str, Any] = {
            "loyaltyProgramId": 855,
            "partnerProgramId": 25,
            "partnerProgramName": "Demo-p1",
        }
        if kind == "supplementaryMembershipExpiryReminder":
            data["scheduledExpiryDate"] = f"2024-0{1 + second % 9}-15"
        elif kind != "partnerProgramDelinked":
            data["partnerProgramType"] = "EXTERNAL"
            tier = draw(st.integers(1, 4))
            data["customerPartnerProgramDetails"] = {"partnerTierNumber": tier}
            if kind == "partnerProgramUpdated":
                data["updateType"] = draw(st.sampled_from(["UPGRADE", "DOWNGRADE"]))
        event_id = draw(st.one_of(st.none(), st.uuids().map(str)))
        payload: dict[str, Any] = {
            "eventName": kind,
            "orgId": 50191,
            "createdAt": BASE_MS + second * 1000,
            "data": data,
        }
        if event_id:
            payload["eventId"] = event_id
        payloads.append(payload)
    return payloads


def for_customer(payloads: list[dict[str, Any]], customer: int) -> list[dict[str, Any]]:
    result = []
    for payload in payloads:
        copy = json.loads(json.dumps(payload))
        copy["data"]["customerIdentifiers"] = {"customerId": customer}
        if "eventId" in copy:
            copy["eventId"] = f"{customer}-{copy['eventId']}"
        result.append(copy)
    return result


def redelivered(payload: dict[str, Any], variant: int) -> bytes:
    """The same notification delivered again: other delivery ids, stray spaces, new layout."""
    copy = json.loads(json.dumps(payload))
    copy["refId"] = f"redelivery-{variant} "
    copy["apiRequestId"] = f"request-{variant}"
    if variant % 2:
        copy["orgId "] = copy.pop("orgId")
        copy["data"]["partnerProgramName"] = " Demo-p1  "
    return json.dumps(copy, indent=variant % 3 or None).encode()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=membership_histories(), data=st.data())
def test_any_order_duplication_and_batching_give_the_same_membership(
    ledger: Ledger, history: list[dict[str, Any]], data: st.DataObject
) -> None:
    # Two customers in the same ledger: one gets the history once, in order...
    reference, subject = next(CUSTOMERS), next(CUSTOMERS)
    ledger.receive([json.dumps(p).encode() for p in for_customer(history, reference)])
    # ...the other gets it shuffled, with redeliveries, in random batches.
    payloads = for_customer(history, subject)
    copies = data.draw(st.lists(st.integers(0, len(payloads) - 1), max_size=2 * len(payloads)))
    deliveries = [json.dumps(p).encode() for p in payloads] + [
        redelivered(payloads[index], variant) for variant, index in enumerate(copies)
    ]
    deliveries = data.draw(st.permutations(deliveries))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(deliveries) - 1, 1)), max_size=3)))
    outcomes = []
    for start, end in itertools.pairwise([0, *cuts, len(deliveries)]):
        outcomes += ledger.receive(deliveries[start:end])

    assert sum(o.status == "recorded" for o in outcomes) == len(payloads)
    assert sum(o.status == "duplicate" for o in outcomes) == len(copies)
    expected = membership_record(ledger.membership(MembershipKey(50191, reference, 25)).state)
    actual = membership_record(ledger.membership(MembershipKey(50191, subject, 25)).state)
    assert {**actual, "customer_id": None} == {**expected, "customer_id": None}
    assert_snapshot_agrees_with_history(ledger, subject)


def assert_snapshot_agrees_with_history(ledger: Ledger, customer: int) -> None:
    """The stored snapshot (what the next batch resumes from) is the fold of the whole history,
    hangs on the chain's last link, and every event's anomalies are what a fold of the
    events recorded before it shows: resuming from snapshots changed nothing."""
    membership = ledger.membership(MembershipKey(50191, customer, 25))
    version, text, chain_tip = ledger.store.select_snapshots([membership.id])[membership.id]
    assert decode_snapshot(membership.id, version, text) == membership.snapshot
    assert chain_tip == ledger.store.chain_tips([(membership.id, version)])[membership.id]
    for count, event in enumerate(membership.recorded, start=1):
        _, steps = fold_steps(membership.key, membership.recorded[:count])
        seen = next(step.anomalies for step in steps if step.event is event)
        assert tuple(event.anomalies) == seen
