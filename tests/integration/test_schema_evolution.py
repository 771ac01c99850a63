"""Events stored by release 1 load, fold, verify and project identically under today's code."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from uuid import UUID

from domain.audit import Auditor
from domain.history import Chronicle
from domain.integrity import parse_anchor
from domain.ledger import Ledger, membership_record
from domain.membership import PartnerMembership
from projections.queries import Queries
from projections.runner import Projector
from tests.conftest import FIXTURES

RELEASE_1 = FIXTURES / "ledger-v1"


def rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (RELEASE_1 / name).read_text().splitlines()]


def load_release_1(ledger: Ledger) -> None:
    """Write release 1's rows into this (empty) ledger's tables, positions included."""
    recorder: Any = ledger.recorder
    postgres = recorder.placeholder == "%s"

    def member(hex_id: str) -> Any:
        return recorder.originator(UUID(hex_id))

    with recorder.datastore.transaction(commit=True) as cursor:
        for event in rows("events.jsonl"):
            cursor.execute(
                recorder.sql(
                    f"INSERT INTO {recorder.events_table} ({recorder.position_column}, "
                    "originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s, %s)"
                ),
                (
                    event["position"],
                    member(event["originator_id"]),
                    event["originator_version"],
                    event["topic"],
                    base64.b64decode(event["state"]),
                ),
            )
        for row in rows("inbox.jsonl"):
            row["originator_id"] = member(row["originator_id"])
            names = ", ".join(row)
            marks = ", ".join(["%s"] * len(row))
            cursor.execute(
                recorder.sql(f"INSERT INTO ledger_inbox ({names}) VALUES ({marks})"),
                tuple(row.values()),
            )
        for row in rows("customer_keys.jsonl"):
            row["key"] = None if row["key"] is None else base64.b64decode(row["key"])
            names = ", ".join(row)
            marks = ", ".join(["%s"] * len(row))
            cursor.execute(
                recorder.sql(f"INSERT INTO ledger_customer_keys ({names}) VALUES ({marks})"),
                tuple(row.values()),
            )
        if postgres:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{recorder.events_table}', "
                f"'notification_id'), (SELECT MAX(notification_id) FROM {recorder.events_table}))"
            )


def test_release_1_events_still_verify_to_the_published_digest(ledger: Ledger) -> None:
    load_release_1(ledger)
    auditor = Auditor(ledger.store)
    assert auditor.verify() == []
    anchor = parse_anchor(Path(RELEASE_1 / "digest.txt").read_text())
    assert auditor.verify_against(*anchor) == []


def test_release_1_events_fold_and_project_to_the_same_memberships(ledger: Ledger) -> None:
    load_release_1(ledger)
    expected = rows("memberships.jsonl")
    assert [membership_record(state) for state in ledger.memberships()] == expected
    projector = Projector(ledger)
    projector.catch_up()
    assert list(Queries(projector.store).memberships()) == expected


def test_release_1_events_are_upcast_and_new_events_continue_their_chains(ledger: Ledger) -> None:
    load_release_1(ledger)
    record = rows("memberships.jsonl")[-1]
    key = (record["org_id"], record["customer_id"], record["partner_program_id"])
    membership = ledger.membership(*key)
    assert all(isinstance(e, PartnerMembership.Recorded) for e in membership.recorded)
    assert {e.delivered_at for e in membership.recorded} == {None}
    # A new notification for that membership is stored as version 2 of the event class.
    delink = {
        "eventId": "after-release-2",
        "eventType": "partnerProgramDelinked",
        "timeStamp": 1790000000500,
        "attributes": {
            "eventName": "partnerProgramDelinked",
            "orgId": key[0],
            "createdAt": 1790000000000,
            "data": {
                "customerIdentifiers": {"customerId": key[1]},
                "loyaltyProgramId": 855,
                "partnerProgramId": key[2],
            },
        },
    }
    (outcome,) = ledger.receive([json.dumps(delink).encode()])
    assert outcome.status == "recorded"
    history = Chronicle(ledger).history(*key)
    assert history[-1]["delivered_at"] == "2026-09-21T14:13:20.500Z"
    assert history[0]["delivered_at"] is None
    assert ledger.membership(*key).state.status == "DELINKED"
    assert Auditor(ledger.store).verify() == []
