"""Every statement of a write has a deadline, not only its lock waits (issue 11, item 5).

The library bounds the insert transaction's lock waits (``lock_timeout``); a statement that
runs long for another reason (a slow trigger, a server under I/O pressure) used to hold the
single writer for as long as it ran. Now it is cancelled after three lock timeouts, and the
batch is tried again like any other transient failure.
"""

from __future__ import annotations

import json
import time

import psycopg

from domain.ledger import Ledger
from infrastructure.settings import Settings
from infrastructure.wiring import open_ledger


def test_a_write_statement_that_runs_long_is_cancelled_and_the_batch_tried_again(
    postgres_url: str,
) -> None:
    # Given a ledger whose locks time out after 1 s, and a store whose first events insert
    # sleeps for a minute (the sequence is not rolled back, so later attempts run at once)
    settings = Settings(db=postgres_url, lock_timeout_seconds=1)
    with open_ledger(settings) as ledger:
        assert isinstance(ledger, Ledger)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE slow_inserts")
        conn.execute(
            "CREATE FUNCTION slow_first() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF nextval('slow_inserts') = 1 THEN PERFORM pg_sleep(60); END IF; "
            "RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER slow_first BEFORE INSERT ON ledger_inbox "
            "FOR EACH ROW EXECUTE FUNCTION slow_first()"
        )
    payload = json.dumps(
        {
            "eventName": "partnerProgramLinked",
            "orgId": 7,
            "createdAt": 1_700_000_000_000,
            "data": {
                "customerIdentifiers": {"customerId": 70},
                "loyaltyProgramId": 5,
                "partnerProgramId": 700,
            },
        }
    ).encode()
    # When a notification is recorded
    started = time.monotonic()
    with open_ledger(settings) as ledger:
        (outcome,) = ledger.receive([payload])
    # Then the stuck statement was cancelled after its deadline (3 s), not after a minute,
    # and the retry recorded the notification
    assert outcome.status == "recorded"
    assert time.monotonic() - started < 30
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_inbox").fetchone() == (1,)
