"""Hostile payloads through the doors: the CLI and the HTTP service never crash, never 5xx."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PostgresServer
from tests.e2e.http_server import running_server
from tests.hostile import hostile_payloads

CLI = Path(sys.executable).parent / "partner-ledger"
ONE_RUN = settings(
    max_examples=1, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


@ONE_RUN
@given(payloads=st.lists(hostile_payloads(), min_size=300, max_size=300))
def test_the_cli_ingests_300_hostile_payloads_and_accounts_for_each(
    payloads: list[bytes], db_url: str, tmp_path: Path
) -> None:
    # One per line, as JSON Lines requires: a payload's own line breaks would split it.
    lines = [p.replace(b"\n", b" ").replace(b"\r", b" ") for p in payloads]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    done = subprocess.run(
        [str(CLI), "--db", db_url, "ingest", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout)
    expected = sum(1 for line in lines if line.strip())
    assert summary["received"] == expected
    assert summary["received"] == (
        summary["recorded"] + summary["duplicates"] + summary["quarantined"]
    )
    verify = subprocess.run(
        [str(CLI), "--db", db_url, "verify"], capture_output=True, text=True, timeout=300
    )
    assert verify.returncode == 0, verify.stdout


@ONE_RUN
@given(payloads=st.lists(hostile_payloads(), min_size=150, max_size=150))
def test_the_http_service_answers_150_hostile_payloads_without_a_5xx(
    payloads: list[bytes], postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = postgres.create()
    try:
        with running_server(url, tmp_path_factory.mktemp("hostile-http")) as server:
            answers = [server.post(payload) for payload in payloads]
            assert all(a.status_code < 500 for a in answers), [
                (a.status_code, a.text[:200]) for a in answers if a.status_code >= 500
            ]
            statuses = [a.json()["status"] for a in answers if a.status_code in (200, 400)]
            assert len(statuses) == len(payloads)
            # What was said is what was stored.
            (recorded,) = server.sql("SELECT COUNT(*) FROM ledger_inbox")[0]
            assert recorded == statuses.count("recorded")
            (open_entries,) = server.sql("SELECT COUNT(*) FROM ledger_quarantine")[0]
            assert open_entries == len(
                {p for p, s in zip(payloads, statuses, strict=True) if s == "quarantined"}
            )
    finally:
        postgres.drop(url)
