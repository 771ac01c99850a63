"""Two kinds of time: what was true at T, and what the ledger said at K."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from domain.errors import MembershipNotFoundError
from domain.history import Chronicle
from domain.keys import MembershipKey
from domain.ledger import Ledger, membership_record
from domain.membership import Status
from tests.conftest import generated
from tests.oracle import membership_states
from tests.payloads import shape_a

KEY = MembershipKey(50191, 354971193, 25)


def notification(name: str, created_at: int, event_id: str, **details: object) -> bytes:
    upgrade = "UPGRADE" if name == "partnerProgramUpdated" else None
    return shape_a(name, created_at, event_id, key=KEY, details=details, update_type=upgrade)


JAN = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DAY = 86_400_000


def at_ms(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def now() -> datetime:
    moment = datetime.now(UTC)
    time.sleep(0.002)  # recording times on either side of this moment differ
    return moment


def test_as_of_and_as_known_at_answer_different_questions(ledger: Ledger) -> None:
    chronicle = Chronicle(ledger)
    # Day 10: an upgrade to tier 2 arrives, but the link (day 1) has not been delivered yet.
    ledger.receive(
        [notification("partnerProgramUpdated", JAN + 10 * DAY, "u", partnerTierNumber=2)]
    )
    known_before_link = now()
    # Later the late link arrives, then a delink on day 20.
    ledger.receive([notification("partnerProgramLinked", JAN + DAY, "l", partnerTierNumber=1)])
    ledger.receive([notification("partnerProgramDelinked", JAN + 20 * DAY, "d")])

    # What the ledger said before the link arrived: an inferred link at tier 2.
    then = chronicle.state_at(KEY, as_known_at=known_before_link)
    assert (then.status, then.link_inferred, then.tier_number) == (Status.LINKED, True, 2)
    # What was true on day 5, as known now: linked (not inferred) at tier 1.
    day5 = chronicle.state_at(KEY, as_of=at_ms(JAN + 5 * DAY))
    assert (day5.status, day5.link_inferred, day5.tier_number) == (Status.LINKED, False, 1)
    # What the ledger, before the link arrived, believed was true on day 5: nothing yet.
    with pytest.raises(MembershipNotFoundError):
        chronicle.state_at(KEY, as_of=at_ms(JAN + 5 * DAY), as_known_at=known_before_link)
    # ...and on day 15: the inferred link.
    both = chronicle.state_at(KEY, as_of=at_ms(JAN + 15 * DAY), as_known_at=known_before_link)
    assert (both.link_inferred, both.tier_number) == (True, 2)
    # Now, with no bound: delinked.
    assert chronicle.state_at(KEY).status is Status.DELINKED


def test_an_export_as_known_at_a_moment_equals_the_export_taken_then(ledger: Ledger) -> None:
    chronicle = Chronicle(ledger)
    stream = generated(1_200, seed=91)
    ledger.receive(stream[:600])
    snapshot = [membership_record(s) for s in membership_states(ledger)]
    moment = now()
    ledger.receive(stream[600:])

    back_then = [membership_record(s) for s in chronicle.states_at(as_known_at=moment)]
    assert back_then == snapshot
    everything = [membership_record(s) for s in chronicle.states_at(as_known_at=now())]
    assert everything == [membership_record(s) for s in membership_states(ledger)]


def test_an_export_as_of_a_moment_folds_only_what_occurred_by_then(ledger: Ledger) -> None:
    chronicle = Chronicle(ledger)
    ledger.receive(generated(800, seed=92))
    cutoff = datetime(2024, 6, 30, tzinfo=UTC)
    exported = list(chronicle.states_at(as_of=cutoff))
    assert exported
    for state in exported[:50]:
        key = (state.org_id, state.customer_id, state.partner_program_id)
        membership = ledger.membership(MembershipKey(*key))
        occurred = [e for e in membership.recorded if e.occurred_at <= cutoff]
        assert state.event_count == len(occurred)
        assert state == chronicle.state_at(MembershipKey(*key), as_of=cutoff)


def test_changes_in_a_period_list_what_was_recorded_in_it(ledger: Ledger) -> None:
    chronicle = Chronicle(ledger)
    ledger.receive([notification("partnerProgramLinked", JAN, "l", partnerTierNumber=1)])
    start = now()
    ledger.receive([notification("partnerProgramUpdated", JAN + DAY, "u", partnerTierNumber=2)])
    end = now()
    ledger.receive([notification("partnerProgramDelinked", JAN + 2 * DAY, "d")])

    changes = list(chronicle.changes(org_id=KEY[0], partner_program_id=None, start=start, end=end))
    assert [c["event"] for c in changes] == ["partnerProgramUpdated"]
    assert changes[0]["membership"] == dict(
        zip(("org_id", "customer_id", "partner_program_id"), KEY, strict=True)
    )
    assert changes[0]["changes"]["tier_number"] == [1, 2]
    assert (
        chronicle.count_changed(org_id=KEY[0], partner_program_id=None, start=start, end=end) == 1
    )
