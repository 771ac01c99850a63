"""The command line as a person uses it (issue 14): tables, dates, help, formats, safety.

Real ``partner-ledger`` processes on real stores; tables are read as a person would, with
``COLUMNS`` setting the terminal width.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.test_cli import (
    CLI,
    EXAMPLES,
    STORY,
    TODAY,
    Run,
    notification,
    write_lines,
)

TIMEOUT = 120
PYTHON_ISMS = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|\(\d+, \d+, \d+\)|\b1 breaks\b")


def person(
    *args: str | Path, db: str | None = None, columns: int = 100, cwd: Path | None = None
) -> Run:
    """One command as a person at a terminal COLUMNS wide would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTNER_LEDGER_")}
    env["COLUMNS"] = str(columns)
    command = (str(CLI), *(("--db", db) if db else ()), *map(str, args))
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )
    return Run(command, done.returncode, done.stdout, done.stderr)


def near_today() -> list[str]:
    """Customer 900 expires in the past and in 20 days; 901 in 3 days (program 70, "Club")."""
    past, soon, later = (TODAY + timedelta(days=d) for d in (-40, 3, 20))
    return [
        notification(
            "partnerProgramLinked",
            customer=900,
            hours=0,
            event_id="p-1",
            details={
                "partnerTierNumber": 1,
                "partnerTierExpiryDate": past.isoformat(),
                "membershipExpiryDate": later.isoformat(),
            },
        ),
        notification(
            "partnerProgramLinked",
            customer=901,
            hours=0,
            event_id="p-2",
            details={"membershipExpiryDate": soon.isoformat()},
        ),
    ]


def lines_of(table: str) -> list[str]:
    return [line.rstrip() for line in table.splitlines() if line.strip()]


# --- tables for people (items 6, 7, 9) ---------------------------------------------------


def test_tables_have_headers_program_names_and_no_python_values(
    db_url: str, tmp_path: Path
) -> None:
    # Given the story (an update before its link) and two memberships expiring soon
    person("ingest", write_lines(tmp_path / "in.jsonl", [*STORY, *near_today()]), db=db_url).ok()

    # Each table has a header row and names program 70 beside its id
    tiers = person("tiers", db=db_url).ok().stdout
    assert re.search(r"^org\s+program\s+tier\s+memberships$", tiers, re.M), tiers
    assert re.search(r"^7\s+70 Club\s+1\s+1$", tiers, re.M), tiers
    expiring = person("expiring", db=db_url).ok().stdout
    assert re.search(r"^date\s+kind\s+org\s+customer\s+program$", expiring, re.M), expiring
    assert "70 Club" in expiring
    membership = person("membership", "7", "700", "70", db=db_url).ok().stdout
    assert re.search(r"^link inferred\s+no$", membership, re.M), membership
    assert re.search(r"^partner program id\s+70 Club$", membership, re.M), membership
    history = person("history", "7", "700", "70", db=db_url, columns=200).ok().stdout
    assert re.search(r"^position\s+when\s+event and source ids\s+changes\s+flags$", history, re.M)
    # history shows the source ids, and changes without Python values
    assert "event story-1" in history and "loyalty program id: - → 5" in history, history
    status = person("status", db=db_url).ok().stdout
    verify = person("verify", db=db_url).ok().stdout
    assert "0 breaks" in verify
    for text in (tiers, expiring, membership, history, status, verify):
        assert not PYTHON_ISMS.search(text), text


def test_a_table_fits_the_terminal_width_and_loses_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    person("ingest", write_lines(tmp_path / "in.jsonl", STORY), db=db).ok()
    for columns in (60, 200):
        history = person("history", "7", "700", "70", db=db, columns=columns).ok().stdout
        assert max(len(line.rstrip()) for line in history.splitlines()) <= columns
        assert "…" not in history, "long cells wrap, never truncate"
    assert "story-1" in history and "UPDATE_WITHOUT_LINK" in history


def test_an_empty_result_says_so_and_a_reversed_window_is_an_error(
    db_url: str, tmp_path: Path
) -> None:
    person("ingest", write_lines(tmp_path / "in.jsonl", STORY), db=db_url).ok()
    tiers = person("tiers", "--org", "99", db=db_url)
    assert tiers.returncode == 0 and tiers.stdout == ""
    assert tiers.stderr == "no LINKED memberships for org 99\n"
    expiring = person("expiring", "--from", "2100-01-01", db=db_url)
    assert expiring.returncode == 0 and expiring.stdout == ""
    assert expiring.stderr == "nothing expires from 2100-01-01 on\n"
    period = person(
        "history", "--org", "7", "--from", "2001-01-01", "--to", "2001-01-02", db=db_url
    )
    assert period.returncode == 0 and "nothing was recorded for org 7" in period.stderr
    # A reversed window is refused before anything is opened (here: the default ledger.db)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    reversed_ = person(
        "history", "--org", "7", "--from", "2023-05-12", "--to", "2023-05-11", cwd=elsewhere
    )
    assert reversed_.failed_with_one_sentence() == (
        "partner-ledger: --to 2023-05-11T23:59:59.999Z is before --from "
        "2023-05-12T00:00:00.000Z: nothing can match"
    )
    assert list(elsewhere.iterdir()) == []
    backwards = person("expiring", "--from", "2030-01-02", "--to", "2030-01-01", db=db_url)
    assert "is before --from" in backwards.failed_with_one_sentence()


def test_an_empty_export_to_a_terminal_says_so(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    person("ingest", write_lines(tmp_path / "in.jsonl", []), db=db).ok()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTNER_LEDGER_")}
    primary, secondary = pty.openpty()
    with subprocess.Popen(
        [str(CLI), "--db", db, "export", "memberships"],
        stdout=secondary,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    ) as process:
        os.close(secondary)
        _, err = process.communicate(timeout=TIMEOUT)
    os.close(primary)
    assert process.returncode == 0
    assert err.decode() == "no memberships to export: the ledger holds none\n"


# --- dates (item 1) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "as_of",
    ["2023-11-14", "20231114", "2023-11-14T23:59:59.999999Z", "1700006399999"],
)
def test_every_form_of_a_day_means_its_end_for_as_of(tmp_path: Path, as_of: str) -> None:
    # The link occurred 2023-11-14T22:13:20Z, the update two hours later (the next day).
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    person("ingest", write_lines(tmp_path / "in.jsonl", STORY[:2]), db=db).ok()
    state = person("membership", "7", "700", "70", "--as-of", as_of, "--json", db=db).json()
    assert (state["status"], state["tier_number"]) == ("LINKED", 1), as_of


@pytest.mark.parametrize("start", ["2023-11-15", "20231115", "1700006400000"])
def test_every_form_of_a_day_means_its_start_for_from(tmp_path: Path, start: str) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    person("ingest", write_lines(tmp_path / "in.jsonl", STORY[:2]), db=db).ok()
    now = datetime.now(UTC)
    changes = person(
        "history", "--org", "7", "--from", start, "--to", now.strftime("%Y%m%d"), "--json", db=db
    ).json_lines()
    assert len(changes) == 2  # both were recorded today, after the start of 2023-11-15


def test_help_documents_the_forms_and_a_bad_form_names_them() -> None:
    help_text = person("membership", "--help", columns=300).ok().stdout
    assert "20230512" in help_text and "epoch milliseconds" in help_text
    bad = person("membership", "1", "2", "3", "--as-of", "12/05/2023")
    assert bad.returncode == 2 and "epoch milliseconds" in bad.stderr
    ambiguous = person("membership", "1", "2", "3", "--as-of", "1700006399")  # seconds
    assert ambiguous.returncode == 2 and "'1700006399' is not" in ambiguous.stderr


# --- --db in both places (item 4), --version, help, completion (item 14) ----------------


def test_db_is_accepted_after_the_command_too(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    person("ingest", EXAMPLES, "--json", "--db", db).json()
    after = person("status", "--json", "--db", db).json()
    before = person("--db", db, "status", "--json").json()
    assert after == before and after["recorded"] > 0
    nested = person("quarantine", "list", "--json", "--db", db).json()
    assert len(nested) == after["quarantined_open"] > 0


def test_version_prints_the_package_version() -> None:
    from importlib.metadata import version

    assert person("--version").ok().stdout == f"partner-ledger {version('partner-ledger')}\n"


HEAVY = ("psycopg", "eventsourcing", "fastapi", "pydantic", "uvicorn", "rich")


@pytest.mark.parametrize("args", [("--help",), ("status", "--help"), ("--version",)])
def test_help_imports_no_database_web_or_validation_library(args: tuple[str, ...]) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "infrastructure.cli", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert imported, "importtime reported nothing"
    heavy = sorted(name for name in imported if name.split(".")[0] in HEAVY)
    assert heavy == [], heavy


def _options(parser_help: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", parser_help))


def test_every_option_of_every_command_has_help_text() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from infrastructure.cli import build_parser

    parser = build_parser(full=True)
    missing = []
    stack = [("partner-ledger", parser)]
    while stack:
        name, current = stack.pop()
        for action in current._actions:
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                stack.extend((f"{name} {sub}", p) for sub, p in choices.items())
            elif not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_bash_completion_offers_commands_and_their_options(tmp_path: Path) -> None:
    script = person("completion", "bash").ok().stdout
    path = tmp_path / "complete.bash"
    path.write_text(script)

    def complete(*words: str) -> set[str]:
        line = " ".join(["partner-ledger", *words])
        program = (
            f"source {path}; COMP_WORDS=({line}); COMP_CWORD={len(words)}; "
            'COMP_LINE="' + line + '"; _partner_ledger; printf "%s\\n" "${COMPREPLY[@]}"'
        )
        done = subprocess.run(
            ["bash", "-c", program], capture_output=True, text=True, timeout=30, check=True
        )
        return set(done.stdout.split())

    assert {"ingest", "expiring", "quarantine", "completion"} <= complete("")
    assert complete("expiring", "--li") == {"--limit"}
    assert {"--reason", "--all"} <= complete("quarantine", "list", "--")


# --- verify beyond the head (item 5) -----------------------------------------------------


def test_a_digest_beyond_the_head_is_its_own_sentence(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    person("ingest", EXAMPLES, db=db).ok()
    digest, _, head = person("digest", db=db).ok().stdout.strip().partition("@")
    done = person("verify", "--against", f"{digest}@99999999", db=db)
    assert done.returncode == 3
    assert f"beyond the log's head at {head}" in done.stdout
    assert "DIGEST_MISMATCH" not in done.stdout and "expected" not in done.stdout
    report = json.loads(person("verify", "--against", f"{digest}@99999999", "--json", db=db).stdout)
    assert [b["kind"] for b in report["breaks"]] == ["BEYOND_HEAD"]


# --- forget (item 12) --------------------------------------------------------------------


def _on_a_terminal(db: str, answer: bytes, *args: str) -> tuple[int, str]:
    """Run a command with a terminal as stdin, answer its prompt, return (status, stderr)."""
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTNER_LEDGER_")}
    with subprocess.Popen(
        [str(CLI), "--db", db, *args],
        stdin=secondary,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as process:
        os.close(secondary)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if process.stderr and select.select([process.stderr], [], [], 0.2)[0]:
                break  # the prompt has begun
        os.write(primary, answer)
        out, err = process.communicate(timeout=TIMEOUT)
    os.close(primary)
    return process.returncode, out.decode() + err.decode()


def test_forget_asks_on_a_terminal_and_needs_yes_off_one(db_url: str, tmp_path: Path) -> None:
    person("ingest", write_lines(tmp_path / "in.jsonl", STORY), db=db_url).ok()
    # A script that does not say --yes forgets nothing
    assert "--yes" in person("forget", "7", "700", db=db_url).failed_with_one_sentence()
    # A person who answers no forgets nothing
    status, said = _on_a_terminal(db_url, b"n\n", "forget", "7", "700")
    assert status == 1 and "[y/N]" in said and "nothing was forgotten" in said
    history = person("history", "7", "700", "70", "--json", db=db_url).json_lines()
    assert all(entry["identifiers_forgotten"] is False for entry in history)
    # A person who answers yes forgets
    status, said = _on_a_terminal(db_url, b"y\n", "forget", "7", "700", "--json")
    assert status == 0, said
    assert '"forgotten": true' in said


def test_forget_refuses_a_customer_never_seen_unless_forced(db_url: str, tmp_path: Path) -> None:
    person("ingest", write_lines(tmp_path / "in.jsonl", STORY), db=db_url).ok()
    typo = person("forget", "7", "7000", "--yes", db=db_url).failed_with_one_sentence()
    assert "never seen customer 7000 of org 7" in typo and "--force" in typo
    forced = person("forget", "7", "7000", "--yes", "--force", "--json", db=db_url).json()
    assert forced == {
        "org_id": 7,
        "customer_id": 7000,
        "forgotten": True,
        "had_identifiers": False,
    }


# --- formats (item 13) -------------------------------------------------------------------


def test_history_json_is_json_lines_in_both_forms(db_url: str, tmp_path: Path) -> None:
    person("ingest", write_lines(tmp_path / "in.jsonl", STORY), db=db_url).ok()
    one = person("history", "7", "700", "70", "--json", db=db_url).json_lines()
    period = person(
        "history", "--org", "7", "--from", "2000-01-01", "--to", "2100-01-01", "--json", db=db_url
    ).json_lines()
    assert len(one) == len(period) == 4
    for whole, changed in zip(one, period, strict=True):
        assert changed.pop("membership") == {
            "org_id": 7,
            "customer_id": 700,
            "partner_program_id": 70,
        }
        assert changed.items() <= whole.items()  # the same entry, without personal data


def test_history_expiring_and_tiers_print_csv(db_url: str, tmp_path: Path) -> None:
    person("ingest", write_lines(tmp_path / "in.jsonl", [*STORY, *near_today()]), db=db_url).ok()
    history = list(
        csv.DictReader(
            io.StringIO(
                person("history", "7", "700", "70", "--format", "csv", db=db_url).ok().stdout
            )
        )
    )
    assert [row["event_id"] for row in history] == ["story-1", "story-2", "story-3", "story-4"]
    assert json.loads(history[0]["changes"])["tier_number"] == [1, 2]
    expiring_json = person("expiring", "--json", db=db_url).json()
    expiring = list(
        csv.DictReader(io.StringIO(person("expiring", "--format", "csv", db=db_url).ok().stdout))
    )
    assert expiring == [{k: str(v) for k, v in row.items()} for row in expiring_json]
    tiers = person("tiers", "--format", "csv", db=db_url).ok().stdout
    assert tiers.splitlines() == [
        "org_id,partner_program_id,tier_number,memberships",
        "7,70,1,1",
        "7,70,,1",  # memberships without a tier last
    ]


def test_output_writes_the_data_to_a_file_and_nothing_to_stdout(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    person("ingest", EXAMPLES, db=db).ok()
    for args in (("export", "memberships"), ("tiers", "--json"), ("status", "--json")):
        target = tmp_path / f"{args[0]}.out"
        written = person(*args, "--output", target, db=db).ok()
        assert written.stdout == ""
        assert target.read_text() == person(*args, db=db).ok().stdout
    unwritable = person("tiers", "--output", tmp_path / "no" / "such" / "dir", db=db)
    assert "cannot write" in unwritable.failed_with_one_sentence()


def test_ingest_takes_several_paths_and_reads_gzip(db_url: str, tmp_path: Path) -> None:
    plain = write_lines(tmp_path / "a.jsonl", STORY[:2])
    zipped = tmp_path / "b.jsonl.gz"
    zipped.write_bytes(gzip.compress("".join(f"{line}\n" for line in STORY[2:]).encode()))
    array = tmp_path / "c.json.gz"
    array.write_bytes(gzip.compress(json.dumps([json.loads(x) for x in near_today()]).encode()))
    summary = person("ingest", plain, zipped, array, "--json", db=db_url).json()
    assert (summary["received"], summary["recorded"], summary["duplicates"]) == (7, 6, 1)
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"not gzip at all")
    assert "cannot read" in person("ingest", broken, db=db_url).failed_with_one_sentence()


# --- expiring starts today and says how to page (item 8) ---------------------------------


def test_expiring_starts_today_and_says_how_many_more_and_how_to_page(
    db_url: str, tmp_path: Path
) -> None:
    person("ingest", write_lines(tmp_path / "in.jsonl", near_today()), db=db_url).ok()
    everything = person("expiring", "--json", db=db_url).json()
    assert all(row["date"] >= TODAY.isoformat() for row in everything)
    assert [row["customer_id"] for row in everything] == [901, 900]  # the past tier is left out
    first = person("expiring", "--limit", "1", db=db_url)
    assert first.returncode == 0
    hint = re.fullmatch(r"1 more row: add --cursor (\S+) for the next page\n", first.stderr)
    assert hint, first.stderr
    second = person("expiring", "--limit", "1", "--cursor", hint.group(1), "--json", db=db_url)
    assert second.json() == everything[1:]
    bad = person("expiring", "--cursor", "nonsense", db=db_url).failed_with_one_sentence()
    assert "cursor" in bad


# --- a customer's memberships (item 15) --------------------------------------------------


def test_memberships_lists_every_program_of_a_customer(db_url: str, tmp_path: Path) -> None:
    other = json.loads(near_today()[0])
    other["data"]["partnerProgramId"], other["data"]["partnerProgramName"] = 71, "Gold"
    other["eventId"] = "p-3"
    person(
        "ingest", write_lines(tmp_path / "in.jsonl", [*near_today(), json.dumps(other)]), db=db_url
    ).ok()
    rows = person("memberships", "7", "900", "--json", db=db_url).json_lines()
    assert [(r["partner_program_id"], r["partner_program_name"]) for r in rows] == [
        (70, "Club"),
        (71, "Gold"),
    ]
    assert rows[0] == person("membership", "7", "900", "70", "--json", db=db_url).json()
    table = person("memberships", "7", "900", db=db_url).ok().stdout
    assert "70 Club" in table and "71 Gold" in table
    assert (
        "no membership" in person("memberships", "7", "999", db=db_url).failed_with_one_sentence()
    )


# --- the quarantine as operators need it (item 11) ---------------------------------------

PRETTY = ["{", '  "eventName": "partnerProgramLinked",', "}"]  # a pretty-printed file, pasted


def test_quarantine_filters_by_reason_names_the_source_and_drops_with_a_record(
    db_url: str, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "pasted.jsonl", [STORY[1], *PRETTY, '{"eventName": "x"}'])
    person("ingest", path, db=db_url).ok()
    entries = person("quarantine", "list", "--json", db=db_url).json()
    assert sorted(e["reason"] for e in entries) == ["NOT_JSON"] * 3 + ["UNKNOWN_EVENT"]
    # Each entry names the file and line it came from
    assert sorted(e["source"] for e in entries) == [f"{path} line {n}" for n in (2, 3, 4, 5)]
    not_json = person("quarantine", "list", "--reason", "NOT_JSON", "--json", db=db_url).json()
    assert len(not_json) == 3 and {e["reason"] for e in not_json} == {"NOT_JSON"}
    table = person("quarantine", "list", "--reason", "not_json", db=db_url, columns=400).ok()
    assert re.search(r"^id\s+reason\s+received\s+times\s+source\s+detail$", table.stdout, re.M)
    assert f"{path} line 2" in table.stdout and "UNKNOWN_EVENT" not in table.stdout
    shown = person("quarantine", "show", not_json[0]["id"], db=db_url, columns=400).ok().stdout
    assert re.search(rf"^source\s+{re.escape(not_json[0]['source'])}$", shown, re.M), shown

    # Drop the pasted lines with a reason: they leave the open list, their record stays
    ids = [e["id"] for e in not_json]
    dropped = person("quarantine", "drop", *ids, "--why", "pasted by mistake", db=db_url).ok()
    assert dropped.stdout.startswith("dropped 3 entries")
    (still_open,) = person("quarantine", "list", "--json", db=db_url).json()
    assert still_open["reason"] == "UNKNOWN_EVENT"
    closed = {e["id"]: e for e in person("quarantine", "list", "--all", "--json", db=db_url).json()}
    for qid in ids:
        assert closed[qid]["resolution"] == "dropped: pasted by mistake"
        assert closed[qid]["resolved_at"] is not None
    assert person("status", "--json", db=db_url).json()["quarantined_open"] == 1
    assert person("quarantine", "drop", ids[0], db=db_url).returncode == 2  # --why is required

    # A replay says what became of each entry, then sums it up
    replay = person("quarantine", "replay", db=db_url).ok().stdout
    assert re.search(r"^id\s+now\s+reason$", replay, re.M)
    assert replay.splitlines()[-1] == (
        "replayed 1 entry: recorded 0, duplicates 0, still quarantined 1"
    )


def test_a_quarantine_table_from_before_sources_gains_the_column(
    db_url: str, tmp_path: Path
) -> None:
    # The table as the previous release created it, holding one entry
    ddl = (
        "CREATE TABLE ledger_quarantine (id TEXT PRIMARY KEY, raw {blob} NOT NULL, "
        "reason TEXT NOT NULL, detail TEXT NOT NULL, received_at_us BIGINT NOT NULL, "
        "last_received_at_us BIGINT NOT NULL, times_received BIGINT NOT NULL, "
        "resolved_at_us BIGINT, resolution TEXT)"
    )
    old_row = (
        "INSERT INTO ledger_quarantine VALUES ('0123456789abcdef', {raw}, 'NOT_JSON', "
        "'not JSON', 1, 1, 1, NULL, NULL)"
    )
    if db_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            conn.execute(ddl.format(blob="BLOB"))
            conn.execute(old_row.format(raw="x'7b'"))
    else:
        import psycopg

        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(ddl.format(blob="bytea"))  # type: ignore[arg-type]
            conn.execute(old_row.format(raw="'\\x7b'::bytea"))  # type: ignore[arg-type]
    path = write_lines(tmp_path / "bad.jsonl", ["not json"])
    person("ingest", path, db=db_url).ok()
    sources = {
        e["id"]: e["source"] for e in person("quarantine", "list", "--json", db=db_url).json()
    }
    assert sources.pop("0123456789abcdef") is None  # from before: no source known
    assert list(sources.values()) == [f"{path} line 1"]


# --- the quickstart (item 10) ------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _checkout_with_a_logging_venv(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the scripts, examples and pyproject beside a .venv whose python logs each
    call (and answers pip without installing) and whose partner-ledger is the real one."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / "examples").mkdir()
    for name in ("scripts/quickstart.sh", "examples/notifications.jsonl", "pyproject.toml"):
        (checkout / name).write_bytes((ROOT / name).read_bytes())
    bin_dir = checkout / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp_path / "python.log"
    python = bin_dir / "python"
    python.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then exit 0; fi\n'
        f'exec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    (bin_dir / "partner-ledger").symlink_to(CLI)
    return checkout, log


def test_the_quickstart_ends_with_a_table_and_installs_only_when_needed(tmp_path: Path) -> None:
    checkout, log = _checkout_with_a_logging_venv(tmp_path)
    script = checkout / "scripts" / "quickstart.sh"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTNER_LEDGER_")}
    env["COLUMNS"] = "160"

    def quickstart() -> str:
        done = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=TIMEOUT, env=env
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = quickstart()
    assert "-m pip install" in log.read_text()  # no stamp yet: installs
    log.write_text("")
    again = quickstart()
    assert "pip" not in log.read_text()  # installed and pyproject unchanged: no reinstall
    for out in (first, again):
        assert re.search(r"^org\s+customer\s+program\s+status\s+tier", out, re.M), out
        assert re.search(r"^\d+ memberships$", out, re.M)
        assert "export memberships" in out.splitlines()[-1]
        assert not PYTHON_ISMS.search(out)
    # A changed pyproject (a new dependency) installs again
    with (checkout / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n# changed\n")
    quickstart()
    assert "-m pip install" in log.read_text()


# --- docs that match ---------------------------------------------------------------------

OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def _synopsis() -> dict[tuple[str, ...], set[str]]:
    """README's synopsis: each command (with its action) and the options its lines name."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Command line", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands: dict[tuple[str, ...], set[str]] = {}
    for line in block.splitlines():
        words = line.replace("[--db URL]", "").split()
        assert words[0] == "partner-ledger", line
        rest = words[1:]
        if rest[0].startswith("--"):
            command: tuple[str, ...] = ()
        elif rest[0] == "quarantine":
            command = tuple(rest[:2])
        else:
            command = (rest[0],)
        commands.setdefault(command, set()).update(OPTION.findall(line))
    return commands


def _usage_options(*command: str) -> set[str]:
    text = person(*command, "--help", columns=1000).ok().stdout
    usage = text.split("\n\n", 1)[0]
    return set(OPTION.findall(usage)) - {"--help"}


def test_every_option_in_the_readme_synopsis_exists_in_help_and_the_other_way_round() -> None:
    synopsis = _synopsis()
    top = person("--help", columns=1000).ok().stdout
    listed = set(re.findall(r"^    (\w+)", top.split("commands:", 1)[1], re.M)) - {"COMMAND"}
    assert {c[0] for c in synopsis if c} == listed, "every command is in the synopsis"
    for command, documented in synopsis.items():
        # README: --db before or after every command; --output FILE for all but serve
        general = {"--db"} | ({"--output"} if command not in ((), ("serve",)) else set())
        if command == ():
            assert documented | {"--db"} == _usage_options()
            continue
        assert documented | general == _usage_options(*command), command
