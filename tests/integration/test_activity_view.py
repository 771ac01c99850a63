"""The activity view: links and delinks per month, counted from every event, not the fold."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, timedelta

from domain.keys import MembershipKey
from domain.ledger import Ledger
from domain.membership import PartnerMembership
from infrastructure.views.queries import Queries
from projections.runner import Projector
from projections.views import ACTIVITY
from tests.conftest import generated
from tests.oracle import membership_states
from tests.payloads import shape_a

KEY = MembershipKey(50191, 354971193, 25)
JAN = 1_704_067_200_000  # 2024-01-01T00:00:00Z
DAY = 86_400_000


def notification(name: str, created_at: int, event_id: str) -> bytes:
    return shape_a(name, created_at, event_id, key=KEY, details={"tierNumber": 1})


def expected_activity(ledger: Ledger) -> dict[tuple[str, str], int]:
    """Every Linked and Delinked event of the ledger, by UTC month of occurrence."""
    kinds = {PartnerMembership.Linked: "link", PartnerMembership.Delinked: "delink"}
    counted: Counter[tuple[str, str]] = Counter()
    for state in membership_states(ledger):
        membership = ledger.membership(state.key)
        for event in membership.recorded:
            if type(event) in kinds:
                month = event.occurred_at.astimezone(UTC).strftime("%Y-%m")
                counted[(month, kinds[type(event)])] += 1
    return dict(counted)


def test_a_relinked_membership_counts_every_link_and_delink_in_its_month(
    ledger: Ledger,
) -> None:
    # Given a membership linked in January, delinked in February, linked again in March
    # (delivered out of order: the March link arrives first).
    ledger.receive(
        [
            notification("partnerProgramLinked", JAN + 60 * DAY, "c"),
            notification("partnerProgramLinked", JAN + 2 * DAY, "a"),
            notification("partnerProgramDelinked", JAN + 40 * DAY, "b"),
        ]
    )
    projector = Projector(ledger)
    projector.catch_up()
    queries = Queries(projector.store)
    # The memberships view keeps only the latest link; the activity view has all three.
    assert queries.membership(*KEY)["linked_at"] == "2024-03-01T00:00:00.000Z"  # type: ignore[index]
    assert queries.activity(since_month="2024-01") == [
        {"month": "2024-01", "kind": "link", "events": 1},
        {"month": "2024-02", "kind": "delink", "events": 1},
        {"month": "2024-03", "kind": "link", "events": 1},
    ]
    assert queries.activity(since_month="2024-02") == [
        {"month": "2024-02", "kind": "delink", "events": 1},
        {"month": "2024-03", "kind": "link", "events": 1},
    ]
    assert queries.activity(since_month="2024-01", org_id=KEY[0] + 1) == []


def test_activity_caught_up_in_small_batches_equals_the_events_and_a_rebuild(
    ledger: Ledger,
) -> None:
    stream = generated(2_000, seed=41)
    # Catch up after every few hundred notifications, in small batches, as a follower does.
    projector = Projector(ledger, batch_size=137)
    for start in range(0, len(stream), 400):
        ledger.receive(stream[start : start + 400])
        projector.catch_up()
    queries = Queries(projector.store)
    incremental = queries.activity(since_month="0000-00")
    expected = expected_activity(ledger)
    assert {(r["month"], r["kind"]): r["events"] for r in incremental} == expected
    assert sum(expected.values()) > 200
    # A rebuild from the log says the same, row for row.
    report = projector.rebuild(ACTIVITY)
    assert (report["changed"], report["added"], report["removed"]) == (0, 0, 0)
    assert queries.activity(since_month="0000-00") == incremental


def test_statuses_and_expiring_counts_agree_with_the_rows(ledger: Ledger) -> None:
    ledger.receive(generated(1_500, seed=43))
    projector = Projector(ledger)
    projector.catch_up()
    queries = Queries(projector.store)
    memberships = list(queries.memberships())
    assert {r["status"]: r["memberships"] for r in queries.statuses()} == Counter(
        r["status"] for r in memberships
    )
    expiry = list(queries.expiry())
    today = min(row["date"] for row in expiry)
    start = date.fromisoformat(today)
    counts = queries.expiring_counts(today=start, within_days=(30, 365))
    for days in (30, 365):
        end = (start + timedelta(days=days)).isoformat()
        wanted = Counter(r["kind"] for r in expiry if today <= r["date"] <= end)
        assert {r["kind"]: r[f"within_{days}"] for r in counts if r[f"within_{days}"]} == wanted
    assert sum(r["within_365"] for r in counts) > 0
