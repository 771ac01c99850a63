"""A payload the store refuses is split out of its batch (issue 11, item 1).

The parser bounds every text, so to make the store refuse a payload the parser accepts, each
test installs a trigger in its own database that refuses a marked ``eventId``: on PostgreSQL
with a chosen SQLSTATE, on SQLite with ``RAISE(ABORT)``. On PostgreSQL the trigger also counts
its firings in a sequence (``nextval`` is not rolled back), so the tests can tell how many times
the refused rows were tried.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from domain.errors import StorageUnavailableError, StoreRefusedError
from domain.integrity import GENESIS
from domain.ledger import Ledger
from domain.rows import InboxRow

MARK = "refuse-me"


def linked(event_id: str, customer: int) -> bytes:
    return json.dumps(
        {
            "eventName": "partnerProgramLinked",
            "eventId": event_id,
            "orgId": 7,
            "createdAt": 1_700_000_000_000 + customer,
            "data": {
                "customerIdentifiers": {"customerId": customer},
                "loyaltyProgramId": 5,
                "partnerProgramId": 70,
            },
        }
    ).encode()


def with_email(payload: bytes, email: str) -> bytes:
    """The payload with an in-store email among its identifiers (sealed with the customer's
    key: a customer's first such payload makes the key)."""
    data = json.loads(payload)
    data["data"]["customerIdentifiers"]["instore"] = {"email": email}
    return json.dumps(data).encode()


def prepared_on_a_pooled_connection(ledger: Ledger, statement: str) -> bool:
    """Whether a connection idle in the ledger's pool has prepared a statement like
    ``statement`` (all taken at once, so that each is asked: the pool gives the writes the
    same connection again, the reads others)."""
    datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
    with ExitStack() as stack:
        connections = [
            stack.enter_context(datastore.get_connection())
            for _ in range(datastore.pool.get_stats()["pool_available"])
        ]
        return any(
            conn.execute(
                "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE %s",
                (statement,),
            ).fetchone()["n"]
            == 1
            for conn in connections
        )


def refuse_marked(db_url: str, *, sqlstate: str = "22023") -> None:
    """Make the store refuse inbox rows whose eventId starts with MARK."""
    if db_url.startswith("sqlite:///"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            conn.execute(
                f"CREATE TRIGGER refuse BEFORE INSERT ON ledger_inbox "
                f"WHEN NEW.event_id LIKE '{MARK}%' "
                "BEGIN SELECT RAISE(ABORT, 'marked value refused'); END"
            )
        return
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE refusals")
        conn.execute(
            "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.event_id LIKE '{MARK}%' THEN PERFORM nextval('refusals'); "
            f"RAISE EXCEPTION 'marked value refused' USING ERRCODE = '{sqlstate}'; END IF; "
            "RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON ledger_inbox FOR EACH ROW "
            "EXECUTE FUNCTION refuse_marked()"
        )


def refusals(db_url: str) -> int:
    """How many times the PostgreSQL trigger refused a row."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT last_value, is_called FROM refusals").fetchone()
    assert row is not None
    return int(row[0]) if row[1] else 0


def quarantine(ledger: Ledger) -> list[dict[str, Any]]:
    return [ledger.quarantine_entry(row["id"]) for row in ledger.store.quarantined()]


@pytest.mark.parametrize("sqlstate", ["22023", "54000"], ids=["data_exception", "limit"])
def test_a_payload_the_store_refuses_is_quarantined_and_the_rest_of_its_batch_commits(
    ledger: Ledger, db_url: str, sqlstate: str
) -> None:
    # Create the tables with a first notification, then install the refusing trigger.
    assert ledger.receive([linked("first", 1)])[0].status == "recorded"
    refuse_marked(db_url, sqlstate=sqlstate)
    # A batch of 16 with one marked payload in the middle.
    batch = [linked(f"ok-{n}", 100 + n) for n in range(16)]
    batch[11] = linked(f"{MARK}-1", 111)

    outcomes = ledger.receive(batch)

    # The other 15 are recorded, at positions; the refused one is quarantined, with a reason.
    assert [o.status for o in outcomes] == ["recorded"] * 11 + ["quarantined"] + ["recorded"] * 4
    assert all(o.position is not None for o in outcomes if o.status == "recorded")
    assert outcomes[11].reason == "STORE_REFUSED"
    assert outcomes[11].detail is not None and "marked value refused" in outcomes[11].detail
    # Its raw bytes are in the quarantine, byte for byte.
    (entry,) = quarantine(ledger)
    assert (entry["reason"], bytes(entry["raw"])) == ("STORE_REFUSED", batch[11])
    assert ledger.store.counts()["recorded"] == 16
    if db_url.startswith("postgresql"):
        # Bisection, no retries: the marked row was tried once per halving (16, 8, 4, 2, 1),
        # where the library's retry alone would have tried it 10 times at each.
        assert refusals(db_url) == 5
    # Delivered again: still refused, still one quarantine entry, now received twice.
    assert ledger.receive([batch[11]])[0].reason == "STORE_REFUSED"
    (entry,) = quarantine(ledger)
    assert entry["times_received"] == 2


def test_every_refused_payload_of_a_batch_is_found(ledger: Ledger, db_url: str) -> None:
    assert ledger.receive([linked("first", 1)])[0].status == "recorded"
    refuse_marked(db_url)
    batch = [linked(f"{MARK}-{n}" if n % 3 == 0 else f"ok-{n}", 200 + n) for n in range(10)]

    outcomes = ledger.receive(batch)

    refused = [n for n, o in enumerate(outcomes) if o.reason == "STORE_REFUSED"]
    assert refused == [0, 3, 6, 9]
    assert sum(o.status == "recorded" for o in outcomes) == 6


def test_a_transient_error_is_retried_and_not_quarantined(postgres_url: str) -> None:
    from infrastructure.settings import Settings
    from infrastructure.wiring import open_ledger

    with open_ledger(Settings(db=postgres_url)) as ledger:
        assert ledger.receive([linked("first", 1)])[0].status == "recorded"
        # 53400, configuration limit exceeded: insufficient resources, class 53.
        refuse_marked(postgres_url, sqlstate="53400")

        with pytest.raises(StorageUnavailableError):
            ledger.receive([linked("ok", 2), linked(f"{MARK}-1", 3)])

        # Retried as the library does (10 attempts), then given up: nothing quarantined,
        # nothing of the batch recorded (it can be delivered again).
        assert refusals(postgres_url) == 10
        assert quarantine(ledger) == []
        assert ledger.store.counts()["recorded"] == 1


def test_sqlite_string_or_blob_too_big_is_a_refusal(tmp_path: Path) -> None:
    """SQLite's own limit on the length of a value, the equivalent of PostgreSQL's class 54:
    lowered on the ledger's writing connection so that one long (but valid) payload hits it."""
    from infrastructure.settings import Settings
    from infrastructure.wiring import open_ledger

    with open_ledger(Settings(db=f"sqlite:///{tmp_path / 'ledger.db'}")) as ledger:
        assert ledger.receive([linked("first", 1)])[0].status == "recorded"
        with ledger.recorder.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
            cursor.sqlite_cursor.connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1250)
        # Its stored event is about 1,400 bytes; the others about 600.
        long = json.loads(linked("x" * 256, 3))
        long["data"] |= {"partnerProgramName": "n" * 256}
        long["data"]["customerPartnerProgramDetails"] = {"membershipNumber": "m" * 256}
        batch = [linked("ok-2", 2), json.dumps(long).encode(), linked("ok-4", 4)]

        outcomes = ledger.receive(batch)

        assert [o.status for o in outcomes] == ["recorded", "quarantined", "recorded"]
        assert outcomes[1].reason == "STORE_REFUSED"
        assert outcomes[1].detail is not None and "too big" in outcomes[1].detail


def test_a_number_out_of_the_databases_range_is_a_refusal_and_nothing_is_written(
    ledger: Ledger,
) -> None:
    """The parser keeps ids within 64 bits; below it, the write refuses what the driver
    cannot send (PostgreSQL's binary COPY, SQLite's integers) as the store's own refusal,
    which the ledger splits out of its batch, rather than failing with OverflowError."""
    membership = uuid4()
    event = StoredEvent(originator_id=membership, originator_version=1, topic="t", state=b"{}")
    row = InboxRow(
        membership_id=membership,
        version=1,
        org_id=7,
        customer_id=2**64,
        partner_program_id=70,
        previous_hash=GENESIS,
        fingerprint="f" * 64,
        event_id=None,
        occurred_at_ms=0,
        recorded_at_us=0,
    )

    with pytest.raises(StoreRefusedError, match="out of the database's range"):
        ledger.store.insert_events([event], inbox=[row])

    assert ledger.store.counts()["recorded"] == 0
    assert ledger.store.select_streams([membership]) == {}


@pytest.mark.parametrize("table", ["ledger_customer_keys", "ledger_heads"])
def test_a_refusal_after_the_writes_statements_are_prepared_leaves_them_usable(
    postgres_url: str, table: str
) -> None:
    """psycopg prepares a statement on a connection from its fifth use. A refusal aborts the
    write's pipeline (the new customer keys go in it, before the table lock) or its
    transaction (the heads, after the COPYs) while those statements are prepared; the
    batches after it, on the same pooled connections, use them again and are recorded."""
    from infrastructure.settings import Settings
    from infrastructure.wiring import open_ledger

    marked = 999
    with open_ledger(Settings(db=postgres_url)) as ledger:
        # Many more single-notification batches than five: the connection the pool gives
        # the writes has prepared their statements.
        for customer in range(1, 61):  # each a new customer with an email: a new key
            warm = with_email(linked(f"warm-{customer}", customer), f"{customer}@example.com")
            assert ledger.receive([warm])[0].status == "recorded"
        assert prepared_on_a_pooled_connection(ledger, f'INSERT INTO "{table}"%')
        column = "customer_id" if table == "ledger_customer_keys" else "originator_version"
        value = marked if table == "ledger_customer_keys" else 2
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.{column} = {value} THEN "
                "RAISE EXCEPTION 'marked value refused' USING ERRCODE = '22023'; END IF; "
                "RETURN NEW; END $$"
            )
            conn.execute(
                f"CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW "
                "EXECUTE FUNCTION refuse_row()"
            )
        # Keys: a new customer with an email to seal, refused. Heads: a second event, a day
        # later, of customer 5's membership.
        refused = json.loads(linked("refused", marked if table == "ledger_customer_keys" else 5))
        refused["createdAt"] += 86_400_000
        batch = [linked(f"ok-{n}", 1000 + n) for n in range(8)]
        batch[3] = with_email(json.dumps(refused).encode(), "refused@example.com")

        outcomes = ledger.receive(batch)

        assert [o.status for o in outcomes].count("recorded") == 7
        assert outcomes[3].reason == "STORE_REFUSED"
        for n in range(60):  # new customers with emails again: the same statements
            after = with_email(linked(f"after-{n}", 2000 + n), f"after-{n}@example.com")
            outcome = ledger.receive([after])[0]
            assert outcome.status == "recorded", outcome
        assert ledger.store.counts()["recorded"] == 60 + 7 + 60
