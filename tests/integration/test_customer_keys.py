"""New customer keys are written in the transaction of the events they seal."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from domain.ledger import Ledger
from tests.integration.test_privacy import MOBILE, linked


def key_rows(ledger: Ledger) -> list[dict[str, Any]]:
    query = ledger.recorder.query  # type: ignore[attr-defined]
    rows: list[dict[str, Any]] = query(
        "SELECT org_id, customer_id, key IS NULL AS forgotten FROM ledger_customer_keys"
    )
    return rows


def test_sealing_writes_no_key_until_the_batch_commits(ledger: Ledger) -> None:
    # Sealing a new customer's identifiers makes a key, but stores nothing yet...
    sealed = ledger.store.seal([(151197, 501, {"mobile": MOBILE})])
    assert [(k.org_id, k.customer_id) for k in sealed.new_keys] == [(151197, 501)]
    assert sealed.identifiers[0] is not None
    assert key_rows(ledger) == []
    # ...the key is stored with the batch that records the customer's first event.
    (outcome,) = ledger.receive([linked(501, 1_700_000_000_000)])
    assert outcome.status == "recorded"
    assert [(r["org_id"], r["customer_id"]) for r in key_rows(ledger)] == [(151197, 501)]
    assert ledger.store.seal([(151197, 501, {"mobile": MOBILE})]).new_keys == []


def test_a_key_made_meanwhile_by_another_writer_is_a_conflict(ledger: Ledger) -> None:
    # Given a key made for a new customer, and the customer forgotten meanwhile...
    sealed = ledger.store.seal([(151197, 502, {"mobile": MOBILE})])
    ledger.forget(org_id=151197, customer_id=502)
    # ...writing that key conflicts (the batch is tried again), and the tombstone stays.
    with pytest.raises(IntegrityError):
        ledger.store.insert_events([], keys=sealed.new_keys)
    assert key_rows(ledger) == [{"org_id": 151197, "customer_id": 502, "forgotten": True}]
    # A batch for that customer now records the event without its identifiers.
    (outcome,) = ledger.receive([linked(502, 1_700_000_000_000)])
    assert outcome.status == "recorded"
    assert ledger.store.seal([(151197, 502, {"mobile": MOBILE})]).identifiers == [None]
