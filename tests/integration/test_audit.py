"""Tamper evidence on real databases: every edit made behind the ledger's back is named."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from domain.audit import Auditor
from domain.integrity import parse_anchor
from domain.keys import MembershipKey
from domain.ledger import Ledger
from domain.membership import membership_id
from tests.conftest import generated

STREAM = generated(600, seed=77)


@pytest.fixture
def recorded(ledger: Ledger) -> Ledger:
    ledger.receive(STREAM)
    return ledger


def auditor(ledger: Ledger) -> Auditor:
    return Auditor(ledger.store, checkpoint_every=25)


def sql(ledger: Ledger, text: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run SQL straight against the store, as someone with database access could."""
    recorder: Any = ledger.recorder
    text = text.replace("EVENTS", recorder.events_table).replace(
        "POSITION", recorder.position_column
    )
    with recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute(recorder.sql(text), params)
        return [dict(row) for row in cursor.fetchall()] if text.startswith("SELECT") else []


def a_membership_with_events(ledger: Ledger, count: int) -> tuple[UUID, MembershipKey]:
    rows = sql(
        ledger,
        "SELECT org_id, customer_id, partner_program_id, COUNT(*) AS n "
        "FROM ledger_inbox GROUP BY org_id, customer_id, partner_program_id "
        "HAVING COUNT(*) >= %s ORDER BY org_id, customer_id, partner_program_id",
        (count,),
    )
    key = MembershipKey(rows[0]["org_id"], rows[0]["customer_id"], rows[0]["partner_program_id"])
    return membership_id(key), key


def stored_state(ledger: Ledger, membership: UUID, version: int) -> bytes:
    recorder: Any = ledger.recorder
    (row,) = sql(
        ledger,
        "SELECT state FROM EVENTS WHERE originator_id = %s AND originator_version = %s",
        (recorder.originator(membership), version),
    )
    return bytes(row["state"])


def set_state(ledger: Ledger, membership: UUID, version: int, state: bytes) -> None:
    recorder: Any = ledger.recorder
    sql(
        ledger,
        "UPDATE EVENTS SET state = %s WHERE originator_id = %s AND originator_version = %s",
        (state, recorder.originator(membership), version),
    )


def kinds(breaks: list[Any]) -> list[tuple[str, int | None]]:
    return sorted((b.kind, b.version) for b in breaks)


def test_an_untouched_ledger_verifies(recorded: Ledger) -> None:
    assert auditor(recorded).checkpoint() > 0
    assert auditor(recorded).verify() == []


def test_editing_a_stored_events_bytes_is_detected_and_named(recorded: Ledger) -> None:
    membership, key = a_membership_with_events(recorded, 2)
    state = stored_state(recorded, membership, 1)
    edited = state.replace(b'"loyalty_program_id":', b'"loyalty_program_id":9')
    assert edited != state
    set_state(recorded, membership, 1, edited)

    (broken,) = auditor(recorded).verify()
    assert (broken.kind, broken.membership, broken.version) == ("CONTENT_CHANGED", key, 1)
    assert broken.expected != broken.found and broken.position is not None


def test_deleting_an_event_is_detected_and_named(recorded: Ledger) -> None:
    membership, key = a_membership_with_events(recorded, 3)
    recorder: Any = recorded.recorder
    sql(
        recorded,
        "DELETE FROM EVENTS WHERE originator_id = %s AND originator_version = 2",
        (recorder.originator(membership),),
    )

    breaks = auditor(recorded).verify()
    assert kinds(breaks) == [("EVENT_MISSING", 2), ("LINK_BROKEN", 3)]
    assert {b.membership for b in breaks} == {key}


def test_deleting_an_event_with_its_inbox_row_is_detected(recorded: Ledger) -> None:
    membership, _ = a_membership_with_events(recorded, 3)
    recorder: Any = recorded.recorder
    for table in ("EVENTS", "ledger_inbox"):
        sql(
            recorded,
            f"DELETE FROM {table} WHERE originator_id = %s AND originator_version = 2",
            (recorder.originator(membership),),
        )
    assert kinds(auditor(recorded).verify()) == [("EVENT_MISSING", 2), ("LINK_BROKEN", 3)]


def test_reordering_two_events_is_detected_and_named(recorded: Ledger) -> None:
    membership, key = a_membership_with_events(recorded, 2)
    first, second = stored_state(recorded, membership, 1), stored_state(recorded, membership, 2)
    set_state(recorded, membership, 1, second)
    set_state(recorded, membership, 2, first)

    breaks = auditor(recorded).verify()
    assert kinds(breaks) == [("CONTENT_CHANGED", 1), ("CONTENT_CHANGED", 2)]
    assert {b.membership for b in breaks} == {key}


def test_reordering_the_log_is_caught_by_the_digest_checkpoints(recorded: Ledger) -> None:
    auditor(recorded).checkpoint()
    # Swap the positions of the 10th and 11th events (different positions, same chains).
    rows = sql(recorded, "SELECT POSITION AS p FROM EVENTS ORDER BY POSITION LIMIT 2 OFFSET 9")
    low, high = rows[0]["p"], rows[1]["p"]
    spare = 10**9
    for old, new in ((low, spare), (high, low), (spare, high)):
        sql(recorded, "UPDATE EVENTS SET POSITION = %s WHERE POSITION = %s", (new, old))

    breaks = auditor(recorded).verify()
    assert [b.kind for b in breaks] == ["DIGEST_MISMATCH"]
    assert breaks[0].position == 25  # the first checkpoint after the swap


def test_an_event_inserted_behind_the_ledgers_back_is_detected(recorded: Ledger) -> None:
    membership, key = a_membership_with_events(recorded, 1)
    versions = sql(
        recorded,
        "SELECT MAX(originator_version) AS v FROM ledger_inbox WHERE "
        "org_id = %s AND customer_id = %s AND partner_program_id = %s",
        key,
    )
    recorder: Any = recorded.recorder
    sql(
        recorded,
        "INSERT INTO EVENTS (originator_id, originator_version, topic, state) "
        "VALUES (%s, %s, %s, %s)",
        (
            recorder.originator(membership),
            versions[0]["v"] + 1,
            "partner_ledger.PartnerMembership.Delinked",
            b"{}",
        ),
    )
    assert [b.kind for b in auditor(recorded).verify()] == ["UNTRACKED_EVENT"]


def test_a_published_digest_proves_the_log_up_to_its_position(recorded: Ledger) -> None:
    digest, position, _ = auditor(recorded).digest()
    anchor = parse_anchor(f"{digest}@{position}")
    assert auditor(recorded).verify_against(*anchor) == []
    # More events later do not change what was published.
    recorded.receive(generated(50, seed=78))
    assert auditor(recorded).verify_against(*anchor) == []
    # Truncating the log (the newest event and its inbox row) is caught only by the anchor.
    sql(
        recorded,
        "DELETE FROM ledger_inbox WHERE (originator_id, originator_version) IN "
        "(SELECT originator_id, originator_version FROM EVENTS WHERE POSITION = %s)",
        (position,),
    )
    sql(recorded, "DELETE FROM EVENTS WHERE POSITION = %s", (position,))
    assert [b.kind for b in auditor(recorded).verify_against(*anchor)] == ["DIGEST_MISMATCH"]


def test_a_snapshot_that_is_not_at_its_last_event_is_detected(recorded: Ledger) -> None:
    """A snapshot is what the next write resumes from: one edited (or left behind its events)
    would skew the anomalies recorded on later events, so verify checks it too."""
    membership, key = a_membership_with_events(recorded, 2)
    recorder: Any = recorded.recorder
    sql(
        recorded,
        "UPDATE ledger_heads SET originator_version = originator_version - 1 "
        "WHERE originator_id = %s",
        (recorder.originator(membership),),
    )

    (broken,) = auditor(recorded).verify()
    assert (broken.kind, broken.membership_id) == ("HEAD_MISMATCH", str(membership))
    assert broken.membership == key and broken.expected != broken.found
