"""The ledger on real SQLite files and a real PostgreSQL: every payload accounted for."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

from domain.history import Chronicle
from domain.keys import MembershipKey
from domain.ledger import Ledger, QuarantineRow, membership_record, quarantine_id
from infrastructure.settings import Settings
from infrastructure.wiring import open_ledger
from tests.conftest import seed_payloads
from tests.oracle import membership_states, now_us

UPDATE = {
    "eventName": "partnerProgramUpdated",
    "eventId": "caff89da-4c1c-4a5c-a27d-8f4f6f74f541",
    "orgId": 50191,
    "refId": "50191_esJyjQ23RQ",
    "apiRequestId": "95d1d0d76dda1565a3c2905f230c3975",
    "createdAt": 1622457292026,
    "data": {
        "customerIdentifiers": {"customerId": 354971193, "instore": {"mobile": "9196 6630 8709"}},
        "loyaltyProgramId": 855,
        "partnerProgramId": 25,
        "partnerProgramName": "Demo-p1",
        "partnerProgramType": "EXTERNAL",
        "updateType": "UPGRADE",
        "customerPartnerProgramDetails": {"partnerTierNumber": 2, "membershipNumber": "123-asa3"},
    },
}


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def statuses(ledger: Ledger, payloads: list[bytes]) -> list[str]:
    return [outcome.status for outcome in ledger.receive(payloads)]


def test_seed_samples_are_recorded_or_quarantined_with_a_reason(ledger: Ledger) -> None:
    outcomes = dict(
        zip(seed_payloads(), ledger.receive(list(seed_payloads().values())), strict=True)
    )
    recorded = {name for name, o in outcomes.items() if o.status == "recorded"}
    assert recorded == {name for name in outcomes if name.endswith(".enriched.json")}
    # The raw (event-log) samples carry placeholders: createdAt 3563 is no time at all.
    reasons = {o.reason for name, o in outcomes.items() if name.endswith(".raw.json")}
    assert reasons == {"BAD_TIMESTAMP"}
    positions = [o.position for o in outcomes.values() if o.position is not None]
    assert len(set(positions)) == 4


def test_redelivering_the_seed_records_nothing_new(ledger: Ledger) -> None:
    payloads = list(seed_payloads().values())
    ledger.receive(payloads)
    again = Counter(statuses(ledger, payloads))
    assert again == {"duplicate": 4, "quarantined": 4}
    # The same raw bytes are one quarantine entry, received twice.
    entries = ledger.store.quarantined()
    assert len(entries) == 4
    assert {entry["times_received"] for entry in entries} == {2}


def test_redelivery_with_stray_spaces_and_new_delivery_ids_is_a_duplicate(ledger: Ledger) -> None:
    first = encode(UPDATE)
    padded = json.loads(first)
    padded["orgId "] = padded.pop("orgId")
    padded["refId"] = "50191_other "
    padded["apiRequestId"] = "another-request"
    padded["data"]["partnerProgramName"] = "  Demo-p1 "
    assert statuses(ledger, [first, encode(padded)]) == ["recorded", "duplicate"]


def test_same_content_under_another_event_id_is_a_duplicate(ledger: Ledger) -> None:
    other = json.loads(encode(UPDATE))
    other["eventId"] = "another-event-id"
    assert statuses(ledger, [encode(UPDATE)]) == ["recorded"]
    assert statuses(ledger, [encode(other)]) == ["duplicate"]


def test_same_content_without_an_event_id_is_a_duplicate(ledger: Ledger) -> None:
    shape_c = json.loads(encode(UPDATE))
    del shape_c["eventId"]
    shape_c["eventSearchKey"] = "data.customerIdentifiers.customerId"
    assert statuses(ledger, [encode(shape_c), encode(UPDATE)]) == ["recorded", "duplicate"]


def test_event_id_reused_with_other_content_is_quarantined_as_id_collision(ledger: Ledger) -> None:
    changed = json.loads(encode(UPDATE))
    changed["data"]["customerPartnerProgramDetails"]["partnerTierNumber"] = 3
    raw = encode(changed)
    ledger.receive([encode(UPDATE)])
    (outcome,) = ledger.receive([raw])
    assert (outcome.status, outcome.reason) == ("quarantined", "ID_COLLISION")
    entry = ledger.quarantine_entry(outcome.quarantine_id or "")
    assert entry["raw"] == raw
    assert UPDATE["eventId"] in entry["detail"]


def test_duplicates_inside_one_batch_are_recorded_once(ledger: Ledger) -> None:
    assert statuses(ledger, [encode(UPDATE)] * 3) == ["recorded", "duplicate", "duplicate"]
    assert ledger.membership(MembershipKey(50191, 354971193, 25)).state.event_count == 1


def test_every_payload_of_a_batch_is_accounted_for(ledger: Ledger) -> None:
    payloads = [encode(UPDATE), b"{not json", b"[1, 2]", encode(UPDATE), b'{"eventName": "x"}']
    outcomes = ledger.receive(payloads)
    assert [(o.status, o.reason) for o in outcomes] == [
        ("recorded", None),
        ("quarantined", "NOT_JSON"),
        ("quarantined", "NOT_AN_OBJECT"),
        ("duplicate", None),
        ("quarantined", "UNKNOWN_EVENT"),
    ]
    assert ledger.quarantine_entry(outcomes[1].quarantine_id or "")["raw"] == b"{not json"


def test_replay_records_an_entry_quarantined_by_an_older_parser(ledger: Ledger) -> None:
    # Given a valid payload that an older version of the parser quarantined...
    raw = encode(UPDATE)
    row = QuarantineRow(quarantine_id(raw), raw, "UNKNOWN_EVENT", "older parser", now_us())
    ledger.save(quarantine=[row])
    assert [e["id"] for e in ledger.store.quarantined()] == [row.id]
    # ...replaying it with today's parser records it and resolves the entry.
    ((qid, outcome),) = ledger.replay_quarantined([row.id[:8]])
    assert (qid, outcome.status) == (row.id, "recorded")
    assert ledger.store.quarantined() == []
    (resolved,) = ledger.store.quarantined(include_resolved=True)
    assert resolved["resolution"] == "recorded"
    assert ledger.membership(MembershipKey(50191, 354971193, 25)).state.tier_number == 2


def test_replay_keeps_what_still_fails_in_quarantine(ledger: Ledger) -> None:
    ledger.receive([b"{broken"])
    ((_, outcome),) = ledger.replay_quarantined()
    assert (outcome.status, outcome.reason) == ("quarantined", "NOT_JSON")
    (entry,) = ledger.store.quarantined()
    assert entry["times_received"] == 1


def test_a_quarantine_entry_keeps_the_first_source_it_came_from(ledger: Ledger) -> None:
    # Given a bad payload received from a file, among good ones
    good = encode(UPDATE)
    outcomes = ledger.receive([b"{broken", good], sources=["a.jsonl", "a.jsonl"])
    qid = outcomes[0].quarantine_id
    # Then its entry names that file, written with it in the batch's transaction
    (entry,) = ledger.store.quarantined()
    assert (entry["id"], entry["source"]) == (qid, "a.jsonl")
    # And when it comes again from elsewhere, or without a source, or is replayed...
    ledger.receive([b"{broken"], sources="b.jsonl")
    ledger.receive([b"{broken"])
    ledger.replay_quarantined()
    # ...the first source known stays
    (entry,) = ledger.store.quarantined()
    assert (entry["source"], entry["times_received"]) == ("a.jsonl", 3)


def test_a_quarantine_entry_first_received_without_a_source_takes_the_next_one(
    ledger: Ledger,
) -> None:
    ledger.receive([b"{broken"])
    ledger.receive([b"{broken"], sources="HTTP delivery")
    (entry,) = ledger.store.quarantined()
    assert entry["source"] == "HTTP delivery"


def test_history_lists_events_in_recording_order_with_late_arrivals(ledger: Ledger) -> None:
    link = json.loads(encode(UPDATE))
    link.update(eventName="partnerProgramLinked", eventId="link-1", createdAt=1622457000000)
    link["data"]["customerPartnerProgramDetails"] = {"partnerTierNumber": 1}
    ledger.receive([encode(UPDATE)])
    ledger.receive([encode(link)])
    history = Chronicle(ledger).history(MembershipKey(50191, 354971193, 25))
    assert [entry["event"] for entry in history] == [
        "partnerProgramUpdated",
        "partnerProgramLinked",
    ]
    assert [entry["late"] for entry in history] == [False, True]
    assert history[0]["anomalies"] == ["UPDATE_WITHOUT_LINK"]
    assert history[0]["position"] < history[1]["position"]
    assert history[1]["changes"]["linked_at"] == [None, "2021-05-31T10:30:00.000Z"]
    state = membership_record(ledger.membership(MembershipKey(50191, 354971193, 25)).state)
    assert (state["link_inferred"], state["tier_number"]) == (False, 2)


def test_customer_identifiers_are_kept_with_the_event_sealed(ledger: Ledger) -> None:
    ledger.receive([encode(UPDATE)])
    (event,) = ledger.membership(MembershipKey(50191, 354971193, 25)).recorded
    assert event.identifiers is not None and "919666308709" not in event.identifiers
    assert ledger.store.unseal(50191, 354971193, event.identifiers) == {"mobile": "919666308709"}


def test_concurrent_writers_record_each_notification_once(db_url: str) -> None:
    # Four writers, each its own Ledger (own connections), deliver the same notifications.
    payloads = []
    for number in range(40):
        payload = json.loads(encode(UPDATE))
        payload["eventId"] = f"event-{number}"
        payload["createdAt"] = 1622457292026 + number * 1000
        payload["data"]["customerIdentifiers"]["customerId"] = 1000 + number % 5
        payloads.append(encode(payload))
    results: list[str] = []
    errors: list[BaseException] = []

    def deliver(order: list[bytes]) -> None:
        try:
            with open_ledger(Settings(db=db_url)) as ledger:
                for start in range(0, len(order), 8):
                    results.extend(statuses(ledger, order[start : start + 8]))
        except BaseException as error:
            errors.append(error)

    orders = [
        payloads,
        payloads[::-1],
        payloads[20:] + payloads[:20],
        payloads[::2] + payloads[1::2],
    ]
    threads = [threading.Thread(target=deliver, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Counter(results) == {"recorded": 40, "duplicate": 120}
    with open_ledger(Settings(db=db_url)) as ledger:
        assert sum(s.event_count for s in membership_states(ledger)) == 40


def _with_details(event_id: str, at_ms: int, details: dict[str, Any], **data: Any) -> bytes:
    payload = json.loads(json.dumps(UPDATE))
    payload["eventId"] = event_id
    payload["createdAt"] = at_ms
    payload["data"]["customerPartnerProgramDetails"] = details
    payload["data"] |= data
    return encode(payload)


def test_expiry_instants_follow_their_dates_through_the_fold(ledger: Ledger) -> None:
    key = (50191, 354971193, 25)
    day = 86_400_000
    start = UPDATE["createdAt"]
    assert isinstance(start, int)
    # A date with its instant, then the same date moved without one: the instant goes too.
    with_instant = {
        "partnerTierExpiryDate": "2021-06-29",
        "partnerTierExpiryDateInMillis": 1624924800000,
    }
    moved = {"partnerTierExpiryDate": "2021-07-31"}
    only_instant = {"membershipExpiryDateInMillis": 1893456000000}
    recorded = statuses(
        ledger,
        [
            _with_details("i-1", start, with_instant),
            _with_details("i-2", start + day, only_instant),
        ],
    )
    assert recorded == ["recorded", "recorded"]
    state = ledger.membership(MembershipKey(*key)).state
    assert (state.tier_expiry_date.isoformat() if state.tier_expiry_date else None) == "2021-06-29"
    assert membership_record(state)["tier_expiry_at"] == "2021-06-29T00:00:00.000Z"
    assert membership_record(state)["membership_expiry_at"] == "2030-01-01T00:00:00.000Z"
    assert statuses(ledger, [_with_details("i-3", start + 2 * day, moved)]) == ["recorded"]
    record = membership_record(ledger.membership(MembershipKey(*key)).state)
    assert (record["tier_expiry_date"], record["tier_expiry_at"]) == ("2021-07-31", None)
    assert record["membership_expiry_at"] == "2030-01-01T00:00:00.000Z"
    # A late event with an instant lands where it belongs in time: it does not win.
    late = {"partnerTierExpiryDate": "2021-06-01", "partnerTierExpiryDateInMillis": 1622505600000}
    assert statuses(ledger, [_with_details("i-0", start - day, late)]) == ["recorded"]
    assert membership_record(ledger.membership(MembershipKey(*key)).state)["tier_expiry_at"] is None
    # History shows what each event carried.
    history = Chronicle(ledger).history(MembershipKey(*key))
    assert [e["expiry_instants"] for e in history] == [
        {"tier_expiry_at": "2021-06-29T00:00:00.000Z"},
        {"membership_expiry_at": "2030-01-01T00:00:00.000Z"},
        {},
        {"tier_expiry_at": "2021-06-01T00:00:00.000Z"},
    ]
