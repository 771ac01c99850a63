"""Only the commands that record (ingest, project, serve) may create a ledger: every other one,
pointed at a store that holds none, says "no ledger at ..." and leaves the store as it was.

Every command the parser knows is tried, through the real CLI, on a path where no SQLite file
exists and on a PostgreSQL database without the ledger's tables.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from infrastructure.cli import build_parser

CLI = Path(sys.executable).parent / "partner-ledger"
CREATING = {"ingest", "project", "serve"}


def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """Each (sub)command with the least arguments it accepts: its required positionals, each
    its first choice or "1"."""
    found: list[list[str]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += commands(sub, (*prefix, name)) or [[*prefix, name]]
    if found or not prefix:
        return found
    required = [
        str(next(iter(a.choices))) if a.choices else "1"
        for a in parser._actions
        if not a.option_strings and a.nargs in (None, "+")
    ]
    options = [
        part
        for a in parser._actions
        if a.option_strings and a.required
        for part in (a.option_strings[0], "1")
    ]
    return [[*prefix, *required, *options]]


# `completion` prints a shell script and never opens a ledger (tested below on its own).
NO_LEDGER = {"completion"}
READ_ONLY = [args for args in commands(build_parser()) if args[0] not in CREATING | NO_LEDGER]


def run(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "--db", db, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def tables(url: str) -> list[str]:
    with psycopg.connect(url, connect_timeout=5) as connection:
        rows = connection.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        ).fetchall()
    return [name for (name,) in rows]


def test_every_command_but_ingest_project_and_serve_is_tried() -> None:
    names = {args[0] for args in READ_ONLY}
    # The commands of today's CLI, so that the enumeration cannot quietly find nothing.
    assert {"export", "membership", "history", "expiring", "tiers", "rebuild", "forget"} <= names
    assert {"verify", "digest", "quarantine", "status"} <= names
    assert ["quarantine", "show", "1"] in READ_ONLY


@pytest.mark.parametrize("args", READ_ONLY, ids=[" ".join(a) for a in READ_ONLY])
def test_a_read_only_command_on_a_missing_sqlite_file_says_no_ledger_and_creates_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    typo = tmp_path / "typo.db"
    result = run(f"sqlite:///{typo}", *args)
    assert (result.returncode, result.stdout) == (1, ""), result
    assert result.stderr.splitlines() == [
        f"partner-ledger: no ledger at {typo}: 'partner-ledger ingest' creates one"
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", READ_ONLY, ids=[" ".join(a) for a in READ_ONLY])
def test_a_read_only_command_on_a_postgresql_database_without_a_ledger_creates_no_table(
    postgres_url: str, args: list[str]
) -> None:
    result = run(postgres_url, *args)
    assert (result.returncode, result.stdout) == (1, ""), result
    assert result.stderr.splitlines() == [
        f"partner-ledger: no ledger at {postgres_url}: 'partner-ledger ingest' creates one"
    ]
    assert tables(postgres_url) == []


def test_a_missing_directory_is_no_ledger_too(tmp_path: Path) -> None:
    typo = tmp_path / "no-such-dir" / "ledger.db"
    result = run(f"sqlite:///{typo}", "export", "memberships")
    assert result.returncode == 1
    assert result.stderr.startswith(f"partner-ledger: no ledger at {typo}")
    assert list(tmp_path.iterdir()) == []


def test_project_creates_the_ledger_that_read_only_commands_then_find(db_url: str) -> None:
    assert run(db_url, "project").returncode == 0
    verified = run(db_url, "verify")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("verified: 0 events")


def test_shell_completion_opens_no_ledger(tmp_path: Path) -> None:
    typo = tmp_path / "typo.db"
    result = run(f"sqlite:///{typo}", "completion", "bash")
    assert result.returncode == 0 and "complete" in result.stdout
    assert list(tmp_path.iterdir()) == []
