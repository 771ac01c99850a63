"""Ctrl-C during a bulk ingest (issue 11, item 13): one line, no worker traceback.

A terminal sends SIGINT to the whole foreground process group, so the parsing worker gets it
too. The test starts `partner-ledger ingest` in a process group of its own and signals the
group, as a terminal would, at two moments: while the worker is starting, and once batches are
being recorded.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = Path(sys.executable).parent / "partner-ledger"
GENERATOR = Path(__file__).resolve().parents[2] / "scripts" / "generate_notifications.py"
DEADLINE = 60


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated JSON Lines file over 4 MB: large enough for ingest to use a worker."""
    path = tmp_path_factory.mktemp("interrupt") / "stream.jsonl"
    subprocess.run(
        [sys.executable, GENERATOR, "--count", "12000", "--seed", "3", "--out", path],
        check=True,
        timeout=DEADLINE,
    )
    assert path.stat().st_size > 4 << 20
    return path


def _group(pgid: int) -> dict[int, tuple[str, bytes]]:
    """Processes alive in process group ``pgid`` (zombies count as gone): their state
    (``R`` running, ``S`` waiting...) and command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found[int(entry.name)] = (fields[0], command)
    return found


def _worker_state(pgid: int) -> str | None:
    """The parsing worker's state, or None before it exists."""
    states = [state for state, command in _group(pgid).values() if b"spawn_main" in command]
    return states[0] if states else None


def _worker_idle(pgid: int) -> bool:
    """The worker waits for its next batch (seen twice, 50 ms apart): blocked in a read."""
    if _worker_state(pgid) != "S":
        return False
    time.sleep(0.05)
    return _worker_state(pgid) == "S"


def _recorded(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM ledger_inbox").fetchone()[0])
    except sqlite3.Error:
        return 0


def _until(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.mark.parametrize("moment", ["worker_importing", "worker_waiting"])
def test_ctrl_c_during_a_bulk_ingest_prints_only_interrupted(
    big_file: Path, tmp_path: Path, moment: str
) -> None:
    db = tmp_path / "ledger.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTNER_LEDGER_")}
    process = subprocess.Popen(
        [str(CLI), "--db", f"sqlite:///{db}", "ingest", str(big_file), "--json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    try:
        # Either while the worker is still importing (a second after it starts), or once
        # batches are being recorded and it waits for the next one.
        _until(lambda: _worker_state(process.pid) or process.poll() is not None, "a worker")
        if moment == "worker_waiting":
            _until(lambda: _recorded(db) > 0 or process.poll() is not None, "a batch recorded")
            _until(lambda: _worker_idle(process.pid) or process.poll() is not None, "idle")
        assert process.poll() is None, "ingest finished before it could be interrupted"
        # Ctrl-C: SIGINT to every process of the group at once.
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=DEADLINE)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert stderr.decode() == "partner-ledger: interrupted\n"
    assert stdout == b""
    assert process.returncode == 130
    # The parent ended its worker: nothing of the group is left running.
    _until(lambda: not _group(process.pid), "the worker to end")
