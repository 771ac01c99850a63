"""Events stored by earlier releases load, fold, verify and project identically under today's
code: release 1 (events at class_version 1, no heads) and release 2 (class_version 2, heads
without the expiry instants)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.audit import Auditor
from domain.history import Chronicle
from domain.integrity import parse_anchor
from domain.keys import MembershipKey
from domain.ledger import Ledger, membership_record
from domain.membership import PartnerMembership
from infrastructure.views.queries import Queries
from projections.runner import Projector
from tests.conftest import FIXTURES
from tests.oracle import membership_states

RELEASE_1 = FIXTURES / "ledger-v1"
RELEASE_2 = FIXTURES / "ledger-v2"
RELEASES = pytest.mark.parametrize(
    "release", [RELEASE_1, RELEASE_2], ids=["release_1", "release_2"]
)
# Export keys added since: null for every membership those releases wrote.
ADDED_KEYS = ("tier_expiry_at", "membership_expiry_at")


def rows(name: str, release: Path = RELEASE_1) -> list[dict[str, Any]]:
    path = release / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def exported(release: Path) -> list[dict[str, Any]]:
    """What that release exported, with today's keys in today's order."""
    return [
        {key: row.get(key) for key in membership_record_keys()}
        for row in rows("memberships.jsonl", release)
    ]


def membership_record_keys() -> tuple[str, ...]:
    from domain.ledger import EXPORT_FIELDS

    return EXPORT_FIELDS


def load_release_1(ledger: Ledger, release: Path = RELEASE_1) -> None:
    """Write a release's rows into this (empty) ledger's tables, positions included."""
    recorder: Any = ledger.recorder
    postgres = recorder.placeholder == "%s"

    def member(hex_id: str) -> Any:
        return recorder.originator(UUID(hex_id))

    with recorder.datastore.transaction(commit=True) as cursor:
        for event in rows("events.jsonl", release):
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
        for row in rows("inbox.jsonl", release):
            row["originator_id"] = member(row["originator_id"])
            names = ", ".join(row)
            marks = ", ".join(["%s"] * len(row))
            cursor.execute(
                recorder.sql(f"INSERT INTO ledger_inbox ({names}) VALUES ({marks})"),
                tuple(row.values()),
            )
        for row in rows("customer_keys.jsonl", release):
            row["key"] = None if row["key"] is None else base64.b64decode(row["key"])
            names = ", ".join(row)
            marks = ", ".join(["%s"] * len(row))
            cursor.execute(
                recorder.sql(f"INSERT INTO ledger_customer_keys ({names}) VALUES ({marks})"),
                tuple(row.values()),
            )
        for row in rows("heads.jsonl", release):
            row["originator_id"] = member(row["originator_id"])
            names = ", ".join(row)
            marks = ", ".join(["%s"] * len(row))
            cursor.execute(
                recorder.sql(f"INSERT INTO ledger_heads ({names}) VALUES ({marks})"),
                tuple(row.values()),
            )
        if postgres:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{recorder.events_table}', "
                f"'notification_id'), (SELECT MAX(notification_id) FROM {recorder.events_table}))"
            )


@RELEASES
def test_earlier_events_still_verify_to_the_published_digest(ledger: Ledger, release: Path) -> None:
    load_release_1(ledger, release)
    auditor = Auditor(ledger.store)
    assert auditor.verify() == []
    anchor = parse_anchor(Path(release / "digest.txt").read_text())
    assert auditor.verify_against(*anchor) == []


@RELEASES
def test_earlier_events_fold_and_project_to_the_same_memberships(
    ledger: Ledger, release: Path
) -> None:
    load_release_1(ledger, release)
    expected = exported(release)
    assert [membership_record(state) for state in membership_states(ledger)] == expected
    projector = Projector(ledger)
    projector.catch_up()
    assert list(Queries(projector.store).memberships()) == expected


def test_release_1_events_are_upcast_and_new_events_continue_their_chains(ledger: Ledger) -> None:
    load_release_1(ledger)
    record = rows("memberships.jsonl")[-1]
    key = (record["org_id"], record["customer_id"], record["partner_program_id"])
    membership = ledger.membership(MembershipKey(*key))
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
    history = Chronicle(ledger).history(MembershipKey(*key))
    assert history[-1]["delivered_at"] == "2026-09-21T14:13:20.500Z"
    assert history[0]["delivered_at"] is None
    assert ledger.membership(MembershipKey(*key)).state.status == "DELINKED"
    assert Auditor(ledger.store).verify() == []


def test_release_2_input_delivered_again_is_all_duplicates(ledger: Ledger) -> None:
    """Release 2 ignored the InMillis instants; today they are read, but stay out of the
    fingerprint: the same payloads again (two of them carry instants) are duplicates."""
    load_release_1(ledger, RELEASE_2)
    payloads = [line.encode() for line in (RELEASE_2 / "input.jsonl").read_text().splitlines()]
    assert sum(b"InMillis" in p for p in payloads) == 2

    outcomes = ledger.receive(payloads)

    assert [o.status for o in outcomes].count("recorded") == 0
    assert {o.status for o in outcomes} == {"duplicate", "quarantined"}
    assert Auditor(ledger.store).verify() == []


def test_release_2_events_are_upcast_and_its_snapshots_fall_back_to_folding(ledger: Ledger) -> None:
    load_release_1(ledger, RELEASE_2)
    # The reference sample's membership: its snapshot was written by release 2, without instants.
    key = (50583, 438624719, 175)
    membership = ledger.membership(MembershipKey(*key))
    assert {str(e.expiry_instants) for e in membership.recorded} == {"{}"}
    assert membership.state.tier_expiry_at is None
    (_, text, _), *_ = ledger.store.select_snapshots([membership.id]).values()
    assert "tier_expiry_at" not in text
    # A new, in-order update with an instant: the old snapshot does not decode, so the ledger
    # folds the events, records this one as class_version 3, and writes a snapshot of today.
    update = {
        "eventName": "partnerProgramUpdated",
        "eventId": "after-release-3",
        "orgId": key[0],
        "createdAt": 1_790_000_000_000,
        "data": {
            "customerIdentifiers": {"customerId": key[1]},
            "loyaltyProgramId": 1377,
            "partnerProgramId": key[2],
            "updateType": "RENEW",
            "customerPartnerProgramDetails": {
                "partnerTierExpiryDate": "2027-01-31",
                "partnerTierExpiryDateInMillis": 1_801_353_600_000,  # 2027-01-31T00:00:00Z
            },
        },
    }
    (outcome,) = ledger.receive([json.dumps(update).encode()])
    assert outcome.status == "recorded"
    state = ledger.membership(MembershipKey(*key)).state
    assert state.tier_expiry_at is not None
    assert state.tier_expiry_at.isoformat() == "2027-01-31T00:00:00+00:00"
    assert state.tier_number == 2  # carried over from release 2's events by the fold
    (_, text, _), *_ = ledger.store.select_snapshots([membership.id]).values()
    assert '"tier_expiry_at":"2027-01-31T00:00:00+00:00"' in text
    history = Chronicle(ledger).history(MembershipKey(*key))
    assert history[-1]["expiry_instants"] == {"tier_expiry_at": "2027-01-31T00:00:00.000Z"}
    assert Auditor(ledger.store).verify() == []
