"""Locks through real processes: a follower that loses its lock notices and stops writing, and
an SQLite ledger keeps one lock file at most.

A follower's lock can go while it runs: on PostgreSQL an outage or ``pg_terminate_backend``
ends the session that holds the advisory lock; on SQLite someone removes the lock file. Either
way the follower must notice within a bounded time, write nothing more, and then take the lock
again if it is free, or stop if another process took it, so that two followers never write at
once.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from domain.ledger import Ledger
from infrastructure.settings import Settings
from infrastructure.views.sqlite import lock_byte
from infrastructure.wiring import open_ledger
from projections.runner import Projector
from projections.views import VIEWS
from tests.conftest import generated
from tests.e2e.http_server import running_server

CLI = Path(sys.executable).parent / "partner-ledger"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "notifications.jsonl"
FOLLOW_LOCKS = sorted(f"follow-{name}" for name in VIEWS)
NOTICE_SECONDS = 20  # the follower checks every pass (1 s backstop on PostgreSQL): generous


class Follower:
    """A real ``project --follow`` whose stderr lines are collected as they come."""

    def __init__(self, db_url: str) -> None:
        self.process = subprocess.Popen(
            [str(CLI), "--db", db_url, "project", "--follow", "--batch-size", "25"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, words: str, *, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if words in line]
            if found:
                return found[0]
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line with {words!r} in {self.lines}")

    def exit_status(self, *, timeout: float) -> int:
        status = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return status

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.exit_status(timeout=60)


@contextmanager
def following(db_url: str) -> Iterator[Follower]:
    follower = Follower(db_url)
    try:
        follower.wait_for_line("following the log")
        yield follower
    finally:
        if follower.process.poll() is None:
            follower.process.kill()
        follower.process.wait(timeout=30)


def wait_until_caught_up(ledger: Ledger, *, timeout: float = 90) -> list[int]:
    projector = Projector(ledger)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = projector.status()
        if all(view["generation"] and view["lag_events"] == 0 for view in status):
            return [view["position"] for view in status]
        time.sleep(0.1)
    raise AssertionError(f"views not caught up: {projector.status()}")


def positions(ledger: Ledger) -> list[int]:
    return [view["position"] for view in Projector(ledger).status()]


# --- taking a lock away --------------------------------------------------------------------

HOLDERS = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND classid = ((hashtext(%(key)s)::bigint >> 32) & 4294967295)::oid "
    "AND objid = (hashtext(%(key)s)::bigint & 4294967295)::oid"
)


def holders(db_url: str) -> set[int]:
    """The backends holding the follow locks of this database."""
    with psycopg.connect(db_url, autocommit=True, connect_timeout=5) as connection:
        return {
            pid
            for name in FOLLOW_LOCKS
            for (pid,) in connection.execute(HOLDERS, {"key": f"partner-ledger:{name}"})
        }


def lock_file(db_url: str) -> Path:
    return Path(Settings(db=db_url).eventsourcing_env()["SQLITE_DBNAME"] + ".lock")


def end_the_lock(db_url: str) -> set[int]:
    """What an outage does to a follower's lock: on PostgreSQL its sessions are terminated; on
    SQLite its lock file is removed. Returns the backends that held it (PostgreSQL)."""
    if Settings(db=db_url).is_postgres:
        pids = holders(db_url)
        assert len(pids) == len(FOLLOW_LOCKS), pids
        with psycopg.connect(db_url, autocommit=True, connect_timeout=5) as connection:
            for pid in pids:
                connection.execute("SELECT pg_terminate_backend(%s)", (pid,))
        return pids
    lock_file(db_url).unlink()
    return set()


@contextmanager
def taken_over(db_url: str) -> Iterator[None]:
    """End the follower's lock and take it in this process at once, as a second follower
    would, so that the follower cannot take it back first."""
    if Settings(db=db_url).is_postgres:
        with psycopg.connect(db_url, autocommit=True, connect_timeout=5) as connection:
            connection.execute("SET lock_timeout = '30s'")
            # Queue for the locks first: when their sessions end, they pass to this one.
            waiting = threading.Thread(
                target=connection.execute,
                args=(
                    "SELECT "
                    + ", ".join(
                        f"pg_advisory_lock(hashtext('partner-ledger:{n}'))" for n in FOLLOW_LOCKS
                    ),
                ),
            )
            waiting.start()
            with psycopg.connect(db_url, autocommit=True, connect_timeout=5) as watcher:
                deadline = time.monotonic() + 30
                while not watcher.execute(
                    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                ).fetchone():
                    assert time.monotonic() < deadline, "the takeover never queued"
                    time.sleep(0.02)
            end_the_lock(db_url)
            waiting.join(timeout=40)
            assert not waiting.is_alive()
            yield
        return
    # SQLite: a new lock file, its bytes locked here, moved over the follower's in one step.
    path = lock_file(db_url)
    fresh = path.with_name(path.name + ".new")
    with fresh.open("w") as handle:
        for name in FOLLOW_LOCKS:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, lock_byte(name))
        os.replace(fresh, path)
        yield


# --- a follower that lost its lock (issue 11, item 8) --------------------------------------


def test_a_follower_that_lost_its_lock_takes_it_again_and_a_second_one_still_cannot_start(
    db_url: str,
) -> None:
    with open_ledger(Settings(db=db_url)) as ledger:
        ledger.receive(generated(300, seed=81))
        with following(db_url) as first:
            wait_until_caught_up(ledger)
            # The follower's lock goes while it runs.
            ended = end_the_lock(db_url)
            # It notices, and takes the lock again (free: nobody else wanted it).
            assert "lost the lock" in first.wait_for_line("lost the lock", timeout=NOTICE_SECONDS)
            deadline = time.monotonic() + NOTICE_SECONDS
            if ended:
                while not (holders(db_url) and not holders(db_url) & ended):
                    assert time.monotonic() < deadline, "the follower did not take its lock again"
                    time.sleep(0.1)
                assert len(holders(db_url)) == len(FOLLOW_LOCKS)
            else:
                while not lock_file(db_url).exists():
                    assert time.monotonic() < deadline, "the follower did not take its lock again"
                    time.sleep(0.05)
            # So a second follower still cannot start beside it.
            second = Follower(db_url)
            assert second.exit_status(timeout=60) == 1
            assert any("another process holds the lock" in line for line in second.lines)
            # And the first one goes on following.
            ledger.receive(generated(600, seed=82)[300:])
            wait_until_caught_up(ledger)
            assert first.process.poll() is None
            assert first.stop() == 0


def test_a_follower_whose_lock_another_process_took_writes_nothing_more_and_exits(
    db_url: str,
) -> None:
    with open_ledger(Settings(db=db_url)) as ledger:
        ledger.receive(generated(300, seed=83))
        with following(db_url) as first:
            before = wait_until_caught_up(ledger)
            with taken_over(db_url):
                # New events arrive while another process holds the follow locks.
                ledger.receive(generated(500, seed=84)[300:])
                assert first.exit_status(timeout=NOTICE_SECONDS + 10) == 1
                assert "another process has taken them" in first.lines[-1], first.lines
                assert not any("Traceback" in line for line in first.lines), first.lines
                # It wrote nothing once its lock was gone: the views stayed where they were.
                assert positions(ledger) == before
        # The next follower (here a plain catch-up) brings them to the head.
        assert subprocess.run([str(CLI), "--db", db_url, "project"], timeout=120).returncode == 0
        assert positions(ledger) == [Projector(ledger).last_position()] * len(VIEWS)


@contextmanager
def holding(db_url: str, names: list[str]) -> Iterator[None]:
    """Hold locks in this process, as another process's long rebuild would."""
    if Settings(db=db_url).is_postgres:
        with psycopg.connect(db_url, autocommit=True, connect_timeout=5) as connection:
            for name in names:
                connection.execute(
                    "SELECT pg_advisory_lock(hashtext(%s))", (f"partner-ledger:{name}",)
                )
            yield
        return
    with lock_file(db_url).open("a") as handle:
        for name in names:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, lock_byte(name))
        yield


def test_a_follower_waiting_for_another_process_to_finish_a_rebuild_stops_when_told(
    db_url: str,
) -> None:
    with open_ledger(Settings(db=db_url)) as ledger:
        ledger.receive(generated(100, seed=86))  # no views yet: the first pass builds them
    rebuilding = sorted(f"rebuild-{name}" for name in VIEWS)
    with holding(db_url, rebuilding), following(db_url) as follower:
        # Its first pass waits for the rebuild locks (for up to 300 s).
        time.sleep(2)
        assert follower.process.poll() is None
        # SIGTERM ends the wait: the follower stops at once, as it would between batches.
        follower.process.send_signal(signal.SIGTERM)
        assert follower.exit_status(timeout=15) == 0
        assert follower.lines == ["following the log; Ctrl-C to stop"]


def holding_processes(db_url: str) -> dict[str, str]:
    """Each follow lock's holder, as the process id its session names."""
    with psycopg.connect(db_url, autocommit=True, connect_timeout=5) as connection:
        held = {}
        for name in FOLLOW_LOCKS:
            row = connection.execute(
                f"SELECT application_name FROM pg_stat_activity WHERE pid = ({HOLDERS})",
                {"key": f"partner-ledger:{name}"},
            ).fetchone()
            if row:
                held[name] = row[0].rsplit(" pid ", 1)[-1]
        return held


def test_service_workers_that_lose_the_follow_locks_leave_one_follower_that_keeps_views_current(
    postgres_url: str, tmp_path: Path
) -> None:
    payloads = generated(60, seed=85)
    with running_server(postgres_url, tmp_path, "--workers", "2") as server:
        for payload in payloads[:30]:
            assert server.post(payload).status_code == 200
        deadline = time.monotonic() + NOTICE_SECONDS
        while len(holding_processes(postgres_url)) < len(FOLLOW_LOCKS):
            assert time.monotonic() < deadline, "no worker follows"
            time.sleep(0.1)
        # An outage ends the sessions holding the follow locks; the workers go on.
        end_the_lock(postgres_url)
        deadline = time.monotonic() + NOTICE_SECONDS
        while "lost the lock" not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        # One worker follows again, holding every follow lock itself.
        deadline = time.monotonic() + NOTICE_SECONDS
        while len(holding_processes(postgres_url)) < len(FOLLOW_LOCKS):
            assert time.monotonic() < deadline, "no worker took the locks again"
            time.sleep(0.1)
        assert len(set(holding_processes(postgres_url).values())) == 1
        # And what is written now reaches the views.
        answers = [server.post(payload) for payload in payloads[30:]]
        assert {answer.status_code for answer in answers} == {200}
        last = max(answer.json().get("position") or 0 for answer in answers)
        assert last > 0
        deadline = time.monotonic() + 60
        while server.get("/tiers", min_position=last).status_code != 200:
            assert time.monotonic() < deadline, "the views stopped moving"
            time.sleep(0.2)
    assert "Traceback" not in server.log()


# --- one lock file per SQLite ledger (issue 14, item 3) ------------------------------------


def lock_files(directory: Path) -> list[tuple[str, int]]:
    return sorted((path.name, path.stat().st_size) for path in directory.glob("*.lock"))


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "--db", db_url, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_sqlite_ledger_keeps_one_empty_lock_file_made_only_by_commands_that_lock(
    tmp_path: Path,
) -> None:
    original = tmp_path / "original"
    original.mkdir()
    db_url = f"sqlite:///{original / 'ledger.db'}"
    assert cli(db_url, "ingest", str(EXAMPLES)).returncode == 0
    # The first ingest built the views, under the rebuild locks: one file for all of them.
    assert lock_files(original) == [("ledger.db.lock", 0)]

    # A copy of the ledger, read by commands that take no lock, gets no lock file.
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in original.iterdir():
        if path.suffix != ".lock":
            shutil.copy(path, copy / path.name)
    copy_url = f"sqlite:///{copy / 'ledger.db'}"
    for args in (
        ("export", "memberships"),
        ("tiers",),
        ("expiring",),
        ("status",),
        ("verify",),
        ("quarantine", "list"),
    ):
        run = cli(copy_url, *args)
        assert run.returncode == 0, (args, run.stderr)
    assert lock_files(copy) == []

    # Rebuilds and followers on the original share its one file.
    assert cli(db_url, "rebuild").returncode == 0
    with following(db_url) as follower:
        assert cli(db_url, "project").returncode == 0
        assert follower.stop() == 0
    assert lock_files(original) == [("ledger.db.lock", 0)]


def test_a_killed_holder_releases_its_sqlite_lock_and_two_followers_still_exclude_each_other(
    tmp_path: Path,
) -> None:
    db_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert cli(db_url, "ingest", str(EXAMPLES)).returncode == 0
    with following(db_url) as first:
        # A second follower finds the lock taken and says so.
        second = cli(db_url, "project", "--follow")
        assert second.returncode == 1
        assert second.stderr.splitlines()[-1].startswith(
            "partner-ledger: another process holds the lock 'follow-"
        )
        # The holder dies without a word: the kernel releases its locks.
        first.process.send_signal(signal.SIGKILL)
        assert first.exit_status(timeout=30) == -signal.SIGKILL
    with following(db_url) as third:
        assert third.process.poll() is None
        assert third.stop() == 0
    assert lock_files(tmp_path) == [("ledger.db.lock", 0)]


def test_each_lock_name_has_its_own_byte() -> None:
    names = [f"{kind}-{view}" for kind in ("follow", "rebuild") for view in VIEWS]
    assert len({lock_byte(name) for name in names}) == len(names)
    assert all(0 <= lock_byte(name) < 2**30 for name in names)
