"""The domain rules of one membership: given notifications, then state and anomalies."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.membership import PartnerMembership, Status, fold_state, fold_steps
from domain.notifications import Notification
from tests.unit.membership_helpers import (
    KEY,
    at,
    delinked,
    linked,
    record_all,
    reminded,
    state_of,
    updated,
)

# Each case: notifications in ARRIVAL order, then the fields the state must have.
RULES: list[tuple[str, list[Notification], dict[str, Any]]] = [
    (
        "link_opens_a_period",
        [linked(1, tier_number=1, tier_expiry_date="2024-01-31", membership_number="M-1")],
        {
            "status": Status.LINKED,
            "linked_at": at(1),
            "link_inferred": False,
            "tier_number": 1,
            "tier_expiry_date": date(2024, 1, 31),
            "membership_number": "M-1",
        },
    ),
    (
        "update_before_link_infers_the_link",
        [updated(2, tier_number=2)],
        {
            "status": Status.LINKED,
            "linked_at": None,
            "link_inferred": True,
            "tier_number": 2,
            "last_update_type": "UPGRADE",
        },
    ),
    (
        "late_link_backfills_an_inferred_link",
        [updated(2, tier_number=2), linked(1, tier_number=1)],
        {"status": Status.LINKED, "linked_at": at(1), "link_inferred": False, "tier_number": 2},
    ),
    (
        "delink_closes_the_period_and_keeps_fields",
        [linked(1, tier_number=3), delinked(2)],
        {"status": Status.DELINKED, "delinked_at": at(2), "linked_at": at(1), "tier_number": 3},
    ),
    (
        "delink_of_an_unseen_membership_leaves_no_period",
        [delinked(5)],
        {
            "status": Status.DELINKED,
            "delinked_at": at(5),
            "linked_at": None,
            "link_inferred": False,
        },
    ),
    (
        "second_delink_changes_nothing",
        [linked(1), delinked(2), delinked(3)],
        {"status": Status.DELINKED, "delinked_at": at(2)},
    ),
    (
        "relink_after_delink_opens_a_fresh_period",
        [linked(1, tier_number=3, membership_number="M-1"), delinked(2), linked(3)],
        {
            "status": Status.LINKED,
            "linked_at": at(3),
            "delinked_at": None,
            "tier_number": None,
            "membership_number": None,
        },
    ),
    (
        "update_after_delink_infers_a_relink",
        [linked(1), delinked(2), updated(3, tier_number=4)],
        {
            "status": Status.LINKED,
            "linked_at": None,
            "link_inferred": True,
            "tier_number": 4,
            "delinked_at": None,
        },
    ),
    (
        "reminder_of_an_unseen_membership_infers_a_link",
        [reminded(4, scheduled="2024-06-01")],
        {
            "status": Status.LINKED,
            "link_inferred": True,
            "scheduled_expiry_date": date(2024, 6, 1),
            "last_reminder_at": at(4),
        },
    ),
    (
        "reminder_after_delink_changes_nothing",
        [linked(1), delinked(2), reminded(3)],
        {"status": Status.DELINKED, "scheduled_expiry_date": None, "last_reminder_at": None},
    ),
    (
        "reminder_while_linked_sets_the_scheduled_expiry",
        [linked(1, program_type="SUPPLEMENTARY"), reminded(2, scheduled="2024-06-01")],
        {"scheduled_expiry_date": date(2024, 6, 1), "last_reminder_at": at(2)},
    ),
    (
        "link_while_linked_starts_a_new_period",
        [linked(1, tier_number=1), linked(2)],
        {"status": Status.LINKED, "linked_at": at(2), "tier_number": None},
    ),
    (
        "explicit_null_clears_a_field_but_absence_keeps_it",
        [
            linked(1, membership_number="M-1", tier_number=1),
            updated(2, membership_number=None),
            updated(3, tier_number=2),
        ],
        {"membership_number": None, "tier_number": 2},
    ),
    (
        "renewal_sets_the_membership_expiry",
        [
            linked(1, program_type="SUPPLEMENTARY", membership_expiry_date="2024-01-01"),
            updated(2, update_type="RENEW", membership_expiry_date="2025-01-01"),
        ],
        {"membership_expiry_date": date(2025, 1, 1), "last_update_type": "RENEW"},
    ),
    (
        "update_without_update_type_keeps_the_last_one",
        [
            linked(1),
            updated(2, update_type="DOWNGRADE", tier_number=1),
            updated(3, update_type=None, tier_expiry_date="2025-02-02"),
        ],
        {"last_update_type": "DOWNGRADE", "tier_expiry_date": date(2025, 2, 2)},
    ),
    (
        "program_fields_come_from_the_latest_applied_event",
        [
            linked(1, name="Old name"),
            updated(2, name="New name"),
            delinked(3, name=None),
            reminded(4, name="Ignored"),
        ],
        {"partner_program_name": "New name", "loyalty_program_id": 855},
    ),
    (
        "event_count_counts_every_recorded_event",
        [linked(1), delinked(2), delinked(3), reminded(4)],
        {"event_count": 4},
    ),
    (
        "an_occurrence_tie_is_broken_by_arrival_order",
        [linked(1), delinked(1)],
        {"status": Status.DELINKED},
    ),
]


@pytest.mark.parametrize(
    ("notifications", "expected"), [case[1:] for case in RULES], ids=[case[0] for case in RULES]
)
def test_domain_rule(notifications: list[Notification], expected: dict[str, Any]) -> None:
    state = state_of(notifications)
    assert {name: getattr(state, name) for name in expected} == expected


# Each case: notifications in arrival order, the index of one, the anomalies it carries.
ANOMALIES: list[tuple[str, list[Notification], int, set[str]]] = [
    ("update_without_link", [updated(1)], 0, {"UPDATE_WITHOUT_LINK"}),
    ("update_after_delink", [linked(1), delinked(2), updated(3)], 2, {"UPDATE_AFTER_DELINK"}),
    ("link_while_linked", [linked(1), linked(2)], 1, {"LINK_WHILE_LINKED"}),
    ("double_delink", [linked(1), delinked(2), delinked(3)], 2, {"DOUBLE_DELINK"}),
    ("delink_without_link", [delinked(1)], 0, {"DELINK_WITHOUT_LINK"}),
    (
        "reminder_after_delink",
        [linked(1), delinked(2), reminded(3)],
        2,
        {
            "REMINDER_AFTER_DELINK",
        },
    ),
    ("reminder_without_link", [reminded(1)], 0, {"REMINDER_WITHOUT_LINK"}),
    (
        "upgrade_to_a_lower_tier",
        [linked(1, tier_number=3), updated(2, tier_number=2)],
        1,
        {"TIER_AGAINST_UPDATE_TYPE"},
    ),
    (
        "downgrade_to_a_higher_tier",
        [linked(1, tier_number=1), updated(2, update_type="DOWNGRADE", tier_number=2)],
        1,
        {"TIER_AGAINST_UPDATE_TYPE"},
    ),
    (
        "loyalty_program_changed",
        [linked(1), updated(2, loyalty_program_id=999)],
        1,
        {"LOYALTY_PROGRAM_CHANGED"},
    ),
    (
        "program_type_changed",
        [linked(1), updated(2, program_type="SUPPLEMENTARY")],
        1,
        {"PROGRAM_TYPE_CHANGED"},
    ),
    (
        "reminder_disagrees_with_expiry",
        [
            linked(1, program_type="SUPPLEMENTARY", membership_expiry_date="2024-07-01"),
            reminded(2, scheduled="2024-06-01"),
        ],
        1,
        {"EXPIRY_MISMATCH"},
    ),
    (
        "plain_upgrade_is_no_anomaly",
        [linked(1, tier_number=1), updated(2, tier_number=2)],
        1,
        set(),
    ),
]


@pytest.mark.parametrize(
    ("notifications", "index", "anomalies"),
    [case[1:] for case in ANOMALIES],
    ids=[case[0] for case in ANOMALIES],
)
def test_anomaly_is_recorded_on_the_event(
    notifications: list[Notification], index: int, anomalies: set[str]
) -> None:
    membership = record_all(notifications)
    assert set(membership.recorded[index].anomalies) == anomalies


def test_anomalies_never_reject_a_notification() -> None:
    membership = record_all([delinked(1), delinked(2), updated(3), reminded(4), linked(5)])
    assert membership.version == 5
    assert membership.state.event_count == 5


def test_first_event_creates_the_membership_without_a_separate_created_event() -> None:
    membership = record_all([updated(1)])
    events = membership.collect_events()
    assert [type(e) for e in events] == [PartnerMembership.Updated]
    rebuilt = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    assert isinstance(rebuilt, PartnerMembership)
    assert rebuilt.state == membership.state
    assert rebuilt.id == membership.id


def test_step_changes_list_fields_before_and_after() -> None:
    membership = record_all([linked(1, tier_number=1), updated(2, tier_number=2)])
    changes = membership.steps[1].changes()
    assert changes == {"tier_number": (1, 2), "last_update_type": (None, "UPGRADE")}


# --- order independence ------------------------------------------------------------------

KINDS = st.sampled_from(["link", "update", "delink", "remind"])
TIERS = st.one_of(st.none(), st.integers(min_value=1, max_value=4))


@st.composite
def histories(draw: st.DrawFn) -> list[Notification]:
    """A membership's notifications with distinct occurrence times, in occurrence order."""
    size = draw(st.integers(min_value=1, max_value=8))
    seconds = sorted(draw(st.sets(st.integers(0, 10_000), min_size=size, max_size=size)))
    notes: list[Notification] = []
    for second in seconds:
        kind = draw(KINDS)
        tier = draw(TIERS)
        details = {} if tier is None else {"tier_number": tier}
        if kind == "link":
            notes.append(linked(second, **details))
        elif kind == "update":
            update_type = draw(st.sampled_from(["UPGRADE", "DOWNGRADE", "RENEW", None]))
            notes.append(updated(second, update_type=update_type, **details))
        elif kind == "delink":
            notes.append(delinked(second))
        else:
            notes.append(reminded(second, scheduled=f"2024-0{1 + second % 9}-01"))
    return notes


@settings(max_examples=300, deadline=None)
@given(history=histories(), data=st.data())
def test_any_arrival_order_gives_the_same_state(
    history: list[Notification], data: st.DataObject
) -> None:
    in_order = state_of(history)
    shuffled = data.draw(st.permutations(history))
    assert state_of(list(shuffled)) == in_order


@settings(max_examples=200, deadline=None)
@given(history=histories())
def test_fold_of_recorded_events_equals_incremental_state(history: list[Notification]) -> None:
    membership = record_all(history)
    state, steps = fold_steps(KEY, membership.recorded)
    assert state == membership.state
    assert fold_state(KEY, membership.recorded) == state  # what the views use
    assert [s.event.occurred_at for s in steps] == sorted(
        e.occurred_at for e in membership.recorded
    )
