"""A follower killed with SIGKILL mid-batch, and restarted, loses and doubles nothing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from domain.ledger import membership_record
from infrastructure.settings import Settings
from infrastructure.views.queries import Queries
from infrastructure.wiring import open_ledger
from projections.runner import Projector
from projections.views import VIEWS
from tests.conftest import generated
from tests.oracle import membership_states

CLI = Path(sys.executable).parent / "partner-ledger"


def start_follower(db_url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(CLI), "--db", db_url, "project", "--follow", "--batch-size", "25"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_killing_a_follower_mid_batch_loses_and_doubles_nothing(db_url: str) -> None:
    rng = random.Random(11)
    stream = generated(4_000, seed=41)
    chunks = [stream[start : start + 400] for start in range(0, len(stream), 400)]
    kills = 0
    with open_ledger(Settings(db=db_url)) as ledger:
        for chunk in chunks:
            # New events arrive, a follower starts working on them, and dies mid-way.
            ledger.receive(chunk)
            follower = start_follower(db_url)
            time.sleep(rng.uniform(0.4, 1.5))
            os.kill(follower.pid, signal.SIGKILL)
            follower.wait(timeout=10)
            kills += 1
        # A last follower runs to the end and is stopped politely.
        follower = start_follower(db_url)
        assert follower.stderr is not None
        assert b"following the log" in follower.stderr.readline()
        projector = Projector(ledger)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = projector.status()
            if all(view["lag_events"] == 0 and view["generation"] for view in status):
                break
            time.sleep(0.1)
        follower.send_signal(signal.SIGTERM)
        _, errors = follower.communicate(timeout=30)
        assert follower.returncode == 0, errors.decode()

        assert kills == len(chunks)
        assert {view["lag_events"] for view in projector.status()} == {0}
        assert {view["dead_letters"] for view in projector.status()} == {0}
        # Exactly the memberships the events say: nothing lost, nothing doubled.
        expected = [membership_record(state) for state in membership_states(ledger)]
        assert list(Queries(projector.store).memberships()) == expected
        # One live generation per view; half-built ones from killed rebuilds were cleaned up.
        for view in VIEWS.values():
            assert [g.state for g in projector.store.generations(view)] == ["live"]
