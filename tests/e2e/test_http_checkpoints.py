"""The HTTP service extends the log digest's checkpoints as ``ingest`` does: in the background,
once the log holds `CHECKPOINT_EVERY` events past the last checkpoint, with no command run
after it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from domain import services
from domain.audit import CHECKPOINT_EVERY
from infrastructure.settings import Settings
from infrastructure.wiring import open_ledger
from tests.conftest import generated
from tests.e2e.http_server import running_server, server_env

CLI = Path(sys.executable).parent / "partner-ledger"
DEADLINE_SECONDS = 30.0


def events(db_url: str) -> int:
    with open_ledger(Settings(db=db_url), create=False) as ledger:
        return services.last_position(ledger)


def test_the_service_extends_the_digest_checkpoints_in_the_background(
    postgres_url: str, tmp_path: Path
) -> None:
    payloads = generated(CHECKPOINT_EVERY + 200, seed=13)
    # An ingest leaves the log just short of the first checkpoint.
    ingested = tmp_path / "first.jsonl"
    ingested.write_bytes(b"\n".join(payloads[: CHECKPOINT_EVERY - 20]) + b"\n")
    done = subprocess.run(
        [str(CLI), "--db", postgres_url, "ingest", str(ingested)],
        env=server_env(),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with open_ledger(Settings(db=postgres_url), create=False) as ledger:
        assert services.checkpoints(ledger) == []
        assert services.auditor(ledger).uncheckpointed() < CHECKPOINT_EVERY
    with running_server(postgres_url, tmp_path) as server:
        # Deliveries over HTTP carry the log past it.
        for body in payloads[CHECKPOINT_EVERY - 20 :]:
            assert server.post(body).status_code == 200
            if events(postgres_url) >= CHECKPOINT_EVERY + 5:
                break
        # Nobody runs `ingest` or `digest`: the service writes the checkpoint itself.
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not server.sql("SELECT 1 FROM ledger_digests") and time.monotonic() < deadline:
            time.sleep(0.2)
        rows = server.sql("SELECT position, events FROM ledger_digests ORDER BY position")
    assert [count for _, count in rows] == [CHECKPOINT_EVERY]
    # The checkpoint it wrote is the one the auditor computes from the log.
    with open_ledger(Settings(db=postgres_url), create=False) as ledger:
        assert services.auditor(ledger).verify() == []
