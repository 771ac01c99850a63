"""Crashes and concurrent writers through real processes: nothing lost, nothing doubled.

Every test ends with the accounting check: the final state equals an uninterrupted run's,
every payload is recorded, a duplicate or quarantined, the views equal a fresh rebuild, and
every hash chain verifies.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from domain.audit import Auditor
from infrastructure.settings import Settings
from infrastructure.views.queries import Queries
from infrastructure.wiring import open_ledger
from projections.runner import Projector
from projections.views import VIEWS
from tests.conftest import generated

CLI = Path(sys.executable).parent / "partner-ledger"


def cli(db_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(CLI), "--db", db_url, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return json.loads(out) if out.strip().startswith("{") else {}


def snapshot(db_url: str) -> dict[str, Any]:
    """What the accounting check compares: views, quarantine, recorded fingerprints."""
    with open_ledger(Settings(db=db_url)) as ledger:
        projector = Projector(ledger)
        projector.catch_up()
        queries = Queries(projector.store)
        store: Any = ledger.store
        return {
            "memberships": list(queries.memberships()),
            "expiry": list(queries.expiry()),
            "quarantine": sorted(row["id"] for row in store.quarantined()),
            "fingerprints": sorted(
                r["fingerprint"] for r in store.query("SELECT fingerprint FROM ledger_inbox")
            ),
        }


def accounting_check(db_url: str, reference: dict[str, Any]) -> None:
    state = snapshot(db_url)
    assert state == reference
    # No fingerprint twice (the unique index guarantees it; say so anyway).
    assert len(state["fingerprints"]) == len(set(state["fingerprints"]))
    with open_ledger(Settings(db=db_url)) as ledger:
        projector = Projector(ledger)
        for view in VIEWS.values():
            report = projector.rebuild(view, diff_only=True)
            assert (report["changed"], report["added"], report["removed"]) == (0, 0, 0)
        assert Auditor(ledger.store).verify() == []


@pytest.fixture(scope="module")
def stream_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stream") / "stream.jsonl"
    path.write_bytes(b"\n".join(generated(2_000, seed=404)) + b"\n")
    return path


@pytest.fixture(scope="module")
def reference(stream_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted run of the same file."""
    url = f"sqlite:///{tmp_path_factory.mktemp('reference') / 'ledger.db'}"
    finish(cli(url, "ingest", str(stream_file), "--json"))
    return snapshot(url)


@pytest.mark.slow
def test_ingest_killed_at_twenty_points_then_rerun_equals_an_uninterrupted_run(
    db_url: str, stream_file: Path, reference: dict[str, Any]
) -> None:
    rng = random.Random(3)
    for _ in range(20):
        process = cli(db_url, "ingest", str(stream_file), "--batch-size", "40", "--json")
        time.sleep(rng.uniform(0.3, 2.0))
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
    summary = finish(cli(db_url, "ingest", str(stream_file), "--json"))
    # The last run accounts for every line of the file once.
    assert summary["received"] == 2_000
    assert summary["received"] == (
        summary["recorded"] + summary["duplicates"] + summary["quarantined"]
    )
    accounting_check(db_url, reference)


@pytest.mark.slow
def test_a_rebuild_killed_midway_leaves_the_live_view_and_the_next_rebuild_succeeds(
    db_url: str, stream_file: Path, reference: dict[str, Any]
) -> None:
    finish(cli(db_url, "ingest", str(stream_file), "--json"))
    rng = random.Random(4)
    for _ in range(5):
        process = cli(db_url, "rebuild", "--json")
        time.sleep(rng.uniform(0.2, 1.2))
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
        # Whatever happened, readers still see the whole view.
        assert snapshot(db_url)["memberships"] == reference["memberships"]
    finish(cli(db_url, "rebuild", "--json"))
    with open_ledger(Settings(db=db_url)) as ledger:
        store = Projector(ledger).store
        for view in VIEWS.values():
            assert [g.state for g in store.generations(view)] == ["live"]
    accounting_check(db_url, reference)


@pytest.mark.slow
def test_four_processes_ingesting_shuffled_overlapping_copies_equal_one_ingest(
    db_url: str, stream_file: Path, reference: dict[str, Any], tmp_path: Path
) -> None:
    lines = stream_file.read_bytes().splitlines()
    copies = []
    for number in range(4):
        # Overlapping halves and wholes of the file, each shuffled differently.
        chosen = lines if number % 2 == 0 else lines[number * 300 :] + lines[: number * 300]
        shuffled = random.Random(number).sample(chosen, len(chosen))
        path = tmp_path / f"copy-{number}.jsonl"
        path.write_bytes(b"\n".join(shuffled) + b"\n")
        copies.append(path)
    processes = [
        cli(db_url, "ingest", str(path), "--batch-size", "25", "--json") for path in copies
    ]
    summaries = [finish(process) for process in processes]
    for summary in summaries:
        assert summary["received"] == (
            summary["recorded"] + summary["duplicates"] + summary["quarantined"]
        )
    assert sum(s["recorded"] for s in summaries) == len(reference["fingerprints"])
    accounting_check(db_url, reference)
