"""Issue 11 (payloads and settings), end to end: the real ``partner-ledger`` command, and a
real ``serve`` where the webhook applies, on a fresh SQLite file and a fresh PostgreSQL
database (the ``db_url`` fixture).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.http_server import running_server

CLI = Path(sys.executable).parent / "partner-ledger"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "notifications.jsonl"
TIMEOUT = 120


def run(
    *args: str | Path, db: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARTNER_LEDGER_")}
    return subprocess.run(
        [str(CLI), "--db", db, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
        env=clean | (env or {}),
        stdin=subprocess.DEVNULL,
    )


def ok(completed: subprocess.CompletedProcess[str]) -> str:
    assert completed.returncode == 0, (completed.args, completed.stderr)
    assert completed.stderr == "", completed.stderr
    return completed.stdout


def summary(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    result = json.loads(ok(completed))
    assert isinstance(result, dict)
    return result


def rows(db: str, query: str, *, cwd: Path | None = None) -> list[tuple[Any, ...]]:
    """Ask the store directly: what was written, not what was said. ``EVENTS`` names the
    events table (the library names it after the application on PostgreSQL)."""
    if db.startswith("sqlite:///"):
        query = query.replace("EVENTS", "stored_events")
        path = Path(db.removeprefix("sqlite:///"))
        with sqlite3.connect((cwd or Path.cwd()) / path) as conn:
            return conn.execute(query).fetchall()
    with psycopg.connect(db, autocommit=True) as conn:
        return conn.execute(query.replace("EVENTS", "partnerledger_events")).fetchall()  # type: ignore[arg-type]


# --- item 3: stray library settings in the environment -----------------------------------

STRAY = {
    "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
    "PARTNERLEDGER_SQLITE_DBNAME": "b.db",
    "SQLITE_DBNAME": "c.db",
    "PARTNERLEDGER_POSTGRES_DBNAME": "elsewhere",
    "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
    "PERSISTENCE_MODULE": "eventsourcing.popo",
    "IS_SNAPSHOTTING_ENABLED": "y",
}


def test_library_settings_in_the_environment_change_nothing(db_url: str, tmp_path: Path) -> None:
    # A relative SQLite path, so that a stray SQLITE_DBNAME would show as another file here.
    db = "sqlite:///a.db" if db_url.startswith("sqlite") else db_url
    # Ingest with every stray setting set: the inbox and heads are written as always.
    first = summary(run("ingest", EXAMPLES, "--json", db=db, cwd=tmp_path, env=STRAY))
    assert first["recorded"] > 250
    events = rows(db, "SELECT count(*) FROM EVENTS", cwd=tmp_path)[0][0]
    inbox = rows(db, "SELECT count(*) FROM ledger_inbox", cwd=tmp_path)[0][0]
    heads = rows(db, "SELECT count(*) FROM ledger_heads", cwd=tmp_path)[0][0]
    quarantined = rows(db, "SELECT count(*) FROM ledger_quarantine", cwd=tmp_path)[0][0]
    assert events == inbox == first["recorded"]
    assert heads > 0 and quarantined == first["quarantined"]
    # Stored as plain JSON (not compressed): the bytes of every event start with '{'.
    states = rows(db, "SELECT state FROM EVENTS", cwd=tmp_path)
    assert all(bytes(state).startswith(b"{") for (state,) in states)
    # The same file again, still with the stray settings: all duplicates.
    again = summary(run("ingest", EXAMPLES, "--json", db=db, cwd=tmp_path, env=STRAY))
    assert again["recorded"] == 0
    assert again["duplicates"] == first["recorded"] + first["duplicates"]
    # Verify, history and rebuild work with and without the stray settings.
    for env in (STRAY, {}):
        verified = summary(run("verify", "--json", db=db, cwd=tmp_path, env=env))
        assert verified["ok"] is True, verified
        history = ok(run("history", "151197", "6809254", "45", "--json", db=db, cwd=tmp_path))
        assert "partnerProgramLinked" in history
        ok(run("rebuild", db=db, cwd=tmp_path, env=env))
    # Everything landed in the database --db named, and nowhere else.
    if db.startswith("sqlite"):
        assert sorted(p.name for p in tmp_path.glob("*.db")) == ["a.db"]


def test_an_unsupported_library_setting_is_refused_in_one_sentence() -> None:
    from domain.errors import ConfigurationError
    from domain.ledger import Ledger

    with pytest.raises(ConfigurationError) as refused:
        Ledger(
            env={
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": ":memory:",
                "APPLICATION_RECORDER_TOPIC": "infrastructure.recorders:SQLiteLedgerRecorder",
                "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
            }
        )
    assert str(refused.value) == (
        "the ledger does not support compressed events (library setting COMPRESSOR_TOPIC)"
    )
    with pytest.raises(ConfigurationError, match=r"persistence module 'eventsourcing\.popo'"):
        Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


# --- payloads ----------------------------------------------------------------------------

BASE_MS = 1_700_000_000_000
READ = {"Authorization": "Bearer read-test-8d2e5b41aa"}


def linked(customer: str, *, event_id: str, org: int = 7, hours: int = 0, **extra: Any) -> str:
    """A flat partnerProgramLinked notification as a JSON line; ``customer`` is written into
    the JSON text exactly as given (a number literal)."""
    body = {
        "eventName": "partnerProgramLinked",
        "eventId": event_id,
        "orgId": org,
        "createdAt": BASE_MS + hours * 3_600_000,
        "data": {
            "customerIdentifiers": {"customerId": "CUSTOMER"},
            "loyaltyProgramId": 5,
            "partnerProgramId": 70,
            "partnerProgramName": "Club",
            "partnerProgramType": "EXTERNAL",
            **extra,
        },
    }
    return json.dumps(body).replace('"CUSTOMER"', customer)


def customers(db: str, *, cwd: Path | None = None) -> list[int]:
    exported = ok(run("export", "memberships", db=db, cwd=cwd))
    return [json.loads(line)["customer_id"] for line in exported.splitlines()]


def test_ids_written_with_a_fraction_or_exponent_are_read_exactly(
    db_url: str, tmp_path: Path
) -> None:
    # 2^53 + 1 and 2^53 + 3: a float parse rounds them to 2^53 and 2^53 + 4.
    lines = [
        linked("9007199254740993.0", event_id="exact-1"),
        linked("9.007199254740993e15", event_id="exact-1-again"),  # the same customer
        linked("9007199254740993.5", event_id="fraction", hours=1),
        linked("1e999999999", event_id="exponent", hours=2),
    ]
    path = tmp_path / "numbers.jsonl"
    path.write_text("".join(f"{line}\n" for line in lines))
    first = summary(run("ingest", path, "--json", db=db_url))
    assert (first["recorded"], first["duplicates"], first["quarantined"]) == (1, 1, 2)
    assert first["quarantined_by_reason"] == {"BAD_NUMBER": 2}
    # A .json array file: each element goes in as it was written, not re-encoded.
    array = tmp_path / "numbers.json"
    array.write_text(f"[\n  {linked('9007199254740995.0', event_id='exact-3', hours=3)}\n]\n")
    assert summary(run("ingest", array, "--json", db=db_url))["recorded"] == 1
    assert customers(db_url) == [9007199254740993, 9007199254740995]


def test_the_webhook_reads_ids_exactly(db_url: str, tmp_path: Path) -> None:
    with running_server(db_url, tmp_path) as server:
        answer = server.post(linked("9007199254740997.0", event_id="hook-exact").encode())
        assert answer.json()["status"] == "recorded", answer.text
        refused = server.post(linked("9007199254740997.5", event_id="hook-fraction").encode())
        assert refused.json()["status"] == "quarantined"
        assert refused.json()["reason"] == "BAD_NUMBER"
    assert customers(db_url) == [9007199254740997]


# --- item 1: long texts, and payloads the store refuses ----------------------------------


def test_a_3000_character_event_id_is_quarantined_naming_the_limit(
    db_url: str, tmp_path: Path
) -> None:
    long_id = "e" * 3000
    # Through the command line, between two good notifications.
    path = tmp_path / "long.jsonl"
    lines = [
        linked("1", event_id="before"),
        linked("2", event_id=long_id),
        linked("3", event_id="after"),
    ]
    path.write_text("".join(f"{line}\n" for line in lines))
    ingested = summary(run("ingest", path, "--json", db=db_url))
    assert (ingested["recorded"], ingested["quarantined"]) == (2, 1)
    assert ingested["quarantined_by_reason"] == {"BAD_VALUE": 1}
    (entry,) = json.loads(ok(run("quarantine", "list", "--json", db=db_url)))
    shown = json.loads(ok(run("quarantine", "show", entry["id"], "--json", db=db_url)))
    assert "eventId" in shown["detail"] and "over the limit of 256" in shown["detail"]
    # Through a real serve: answered at once (200 quarantined), the others recorded.
    with running_server(db_url, tmp_path) as server:
        answer = server.post(linked("4", event_id=long_id + "x", hours=4).encode())
        assert answer.status_code == 200
        assert (answer.json()["status"], answer.json()["reason"]) == ("quarantined", "BAD_VALUE")
        assert server.post(linked("5", event_id="ok-5").encode()).json()["status"] == "recorded"
    assert customers(db_url) == [1, 3, 5]


def refuse_marked(db: str) -> None:
    """A test-only trigger that makes the store refuse inbox rows of a marked eventId, with
    SQLSTATE 22023 on PostgreSQL and RAISE(ABORT) on SQLite."""
    if db.startswith("sqlite:///"):
        with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON ledger_inbox "
                "WHEN NEW.event_id LIKE 'refuse-me%' "
                "BEGIN SELECT RAISE(ABORT, 'marked value refused'); END"
            )
        return
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.event_id LIKE 'refuse-me%' THEN RAISE EXCEPTION 'marked value refused' "
            "USING ERRCODE = '22023'; END IF; RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON ledger_inbox FOR EACH ROW "
            "EXECUTE FUNCTION refuse_marked()"
        )


def test_a_payload_the_store_refuses_is_split_out_of_its_batch_and_group(
    db_url: str, tmp_path: Path
) -> None:
    # Create the ledger's tables, then make the store refuse marked rows.
    first = tmp_path / "first.jsonl"
    first.write_text(linked("1", event_id="first") + "\n")
    summary(run("ingest", first, "--json", db=db_url))
    refuse_marked(db_url)
    # One batch of 40 through the command line, with one refused payload in it.
    lines = [linked(str(100 + n), event_id=f"batch-{n}") for n in range(40)]
    lines[27] = linked("127", event_id="refuse-me-cli")
    path = tmp_path / "batch.jsonl"
    path.write_text("".join(f"{line}\n" for line in lines))
    ingested = summary(run("ingest", path, "--json", db=db_url))
    assert (ingested["recorded"], ingested["quarantined"]) == (39, 1)
    assert ingested["quarantined_by_reason"] == {"STORE_REFUSED": 1}
    (entry,) = json.loads(ok(run("quarantine", "list", "--json", db=db_url)))
    shown = json.loads(ok(run("quarantine", "show", entry["id"], "--json", db=db_url)))
    assert shown["reason"] == "STORE_REFUSED"
    assert shown["raw"].encode() == lines[27].encode()
    # Through a real serve, deliveries at once (one group commit, or several).
    with running_server(db_url, tmp_path) as server:
        bodies = [linked(str(200 + n), event_id=f"hook-{n}").encode() for n in range(8)]
        bodies[3] = linked("203", event_id="refuse-me-hook").encode()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(server.post, bodies))
    assert [a.status_code for a in answers] == [200] * 8
    statuses = [a.json()["status"] for a in answers]
    assert statuses == ["recorded"] * 3 + ["quarantined"] + ["recorded"] * 4
    assert answers[3].json()["reason"] == "STORE_REFUSED"
    assert len(customers(db_url)) == 1 + 39 + 7


# --- issue 14, item 17: the ...InMillis expiry instants ----------------------------------


def updated(customer: int, *, event_id: str, hours: int, details: dict[str, Any]) -> str:
    body = json.loads(linked(str(customer), event_id=event_id, hours=hours))
    body["eventName"] = "partnerProgramUpdated"
    body["data"] |= {"updateType": "RENEW", "customerPartnerProgramDetails": details}
    return json.dumps(body)


def test_expiry_instants_are_shown_in_history_export_and_http(db_url: str, tmp_path: Path) -> None:
    # The reference document's instant (01:33 UTC on the date), and one a day off its date.
    lines = [
        linked("1", event_id="link-1"),
        updated(
            1,
            event_id="upd-1",
            hours=1,
            details={
                "partnerTierExpiryDate": "2025-10-31",
                "partnerTierExpiryDateInMillis": 1761874400000,
                "membershipExpiryDate": "2027-10-05",
                "membershipExpiryDateInMillis": 1822759200000 + 2 * 86_400_000,
            },
        ),
    ]
    path = tmp_path / "instants.jsonl"
    path.write_text("".join(f"{line}\n" for line in lines))
    assert summary(run("ingest", path, "--json", db=db_url))["recorded"] == 2
    # The export carries the new keys, as ISO-8601 UTC instants.
    (row,) = [json.loads(line) for line in ok(run("export", "memberships", db=db_url)).splitlines()]
    assert row["tier_expiry_at"] == "2025-10-31T01:33:20.000Z"
    assert row["membership_expiry_at"] == "2027-10-07T18:00:00.000Z"
    assert (row["tier_expiry_date"], row["membership_expiry_date"]) == ("2025-10-31", "2027-10-05")
    # History shows what the event carried, and the disagreement as an anomaly.
    history = [
        json.loads(line)
        for line in ok(run("history", "7", "1", "70", "--json", db=db_url)).splitlines()
    ]
    assert history[1]["expiry_instants"] == {
        "membership_expiry_at": "2027-10-07T18:00:00.000Z",
        "tier_expiry_at": "2025-10-31T01:33:20.000Z",
    }
    assert history[1]["anomalies"] == ["DATE_MILLIS_MISMATCH"]
    # The same update without the instants is a duplicate (they are not in the fingerprint).
    plain = updated(
        1,
        event_id="upd-1-again",
        hours=1,
        details={"partnerTierExpiryDate": "2025-10-31", "membershipExpiryDate": "2027-10-05"},
    )
    path.write_text(plain + "\n")
    assert summary(run("ingest", path, "--json", db=db_url))["duplicates"] == 1
    # A real serve answers the same, and records instants from webhooks.
    with running_server(db_url, tmp_path) as server:
        body = updated(
            2, event_id="upd-2", hours=2, details={"membershipExpiryDateInMillis": 1822759200000}
        )
        link = linked("2", event_id="link-2", hours=1)
        assert server.post(link.encode()).json()["status"] == "recorded"
        position = server.post(body.encode()).json()["position"]
        answer = server.get("/memberships/7/2/70", min_position=position).json()
        assert answer["membership_expiry_at"] == "2027-10-05T18:00:00.000Z"
        assert answer["tier_expiry_at"] is None
        assert server.get("/memberships/7/1/70").json()["tier_expiry_at"] == row["tier_expiry_at"]
