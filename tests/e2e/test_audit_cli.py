"""The audit commands through the real command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infrastructure.settings import Settings
from infrastructure.wiring import open_ledger
from tests.conftest import FIXTURES

CLI = Path(sys.executable).parent / "partner-ledger"
SEED = sorted((FIXTURES / "seed").glob("*.enriched.json"))
EXAMPLES = Path(__file__).parents[2] / "examples" / "notifications.jsonl"


def run(db_url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(CLI), "--db", db_url, *args], capture_output=True, text=True, timeout=120
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def as_lines(done: subprocess.CompletedProcess[str]) -> list[Any]:
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_verify_passes_then_names_an_edit_with_exit_status_3(db_url: str) -> None:
    run(db_url, "ingest", str(EXAMPLES))
    report = as_json(run(db_url, "verify", "--json"))
    assert report["ok"] is True and report["breaks"] == [] and report["events"] > 200

    # Edit one stored event's bytes behind the ledger's back.
    tamper(db_url)
    broken = run(db_url, "verify", "--json", check=False)
    assert broken.returncode == 3
    (item,) = as_json(broken)["breaks"]
    assert item["kind"] == "CONTENT_CHANGED"
    assert item["expected"] != item["found"] and len(item["membership"]) == 3
    human = run(db_url, "verify", check=False)
    assert human.returncode == 3 and "CONTENT_CHANGED" in human.stdout and not human.stderr


def test_a_published_digest_verifies_later_and_a_wrong_one_does_not(db_url: str) -> None:
    run(db_url, "ingest", str(EXAMPLES))
    anchor = run(db_url, "digest").stdout.strip()
    digest, _, position = anchor.partition("@")
    assert len(digest) == 64 and int(position) > 0
    for path in SEED:
        run(db_url, "ingest", str(path))
    assert run(db_url, "verify", "--against", anchor).returncode == 0
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    done = run(db_url, "verify", "--against", f"{wrong}@{position}", check=False)
    assert done.returncode == 3 and "DIGEST_MISMATCH" in done.stdout
    bad = run(db_url, "verify", "--against", "nonsense", check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("partner-ledger:")


def test_time_travel_and_period_history_through_the_cli(db_url: str) -> None:
    update = SEED[2]  # partnerProgramUpdated.enriched.json: occurred 2021-05-31
    assert "Updated" in update.name
    run(db_url, "ingest", str(update))
    between = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    run(db_url, "ingest", str(EXAMPLES))

    key = ["50191", "354971193", "25"]
    now_record = as_json(run(db_url, "membership", *key, "--json"))
    assert (
        as_json(run(db_url, "membership", *key, "--as-known-at", between, "--json")) == now_record
    )
    before = run(db_url, "membership", *key, "--as-of", "2021-05-30", check=False)
    assert before.returncode == 1 and "no event" in before.stderr
    exported = run(db_url, "export", "memberships", "--as-known-at", between).stdout
    assert [json.loads(line) for line in exported.splitlines()] == [now_record]

    changes = run(
        db_url,
        "history",
        "--org",
        "50191",
        "--from",
        between,
        "--to",
        datetime.now(UTC).isoformat(),
        "--json",
    ).stdout.splitlines()
    assert changes and all(json.loads(c)["membership"]["org_id"] == 50191 for c in changes)
    assert all(json.loads(c)["recorded_at"] >= between[:19] for c in changes)


def test_forget_makes_identifiers_unreadable_and_verify_still_passes(db_url: str) -> None:
    linked = SEED[1]  # partnerProgramLinked.enriched.json: customer 6809254, mobile 6590688093
    assert "Linked" in linked.name
    run(db_url, "ingest", str(linked))
    key = ["151197", "6809254", "45"]
    (entry,) = as_lines(run(db_url, "history", *key, "--json"))
    assert entry["identifiers"]["mobile"] == "6590688093"

    result = as_json(run(db_url, "forget", "151197", "6809254", "--yes", "--json"))
    assert result["had_identifiers"] is True
    (entry,) = as_lines(run(db_url, "history", *key, "--json"))
    assert entry["identifiers"] is None and entry["identifiers_forgotten"] is True
    assert as_json(run(db_url, "membership", *key, "--json"))["status"] == "LINKED"
    assert run(db_url, "verify").returncode == 0


def tamper(db_url: str) -> None:
    with open_ledger(Settings(db=db_url)) as ledger:
        recorder: Any = ledger.recorder
        (row,) = recorder.query(
            f"SELECT originator_id, originator_version, state FROM {recorder.events_table} "
            f"ORDER BY {recorder.position_column} LIMIT 1"
        )
        state = bytes(row["state"]).replace(b'"loyalty_program_id":', b'"loyalty_program_id":7')
        with recorder.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                recorder.sql(
                    f"UPDATE {recorder.events_table} SET state = %s "
                    "WHERE originator_id = %s AND originator_version = %s"
                ),
                (state, row["originator_id"], row["originator_version"]),
            )
