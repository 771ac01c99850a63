"""The ``partner-ledger`` command line, end to end: real subprocesses against real stores.

Every test that touches a ledger runs twice through the ``db_url`` fixture: on a fresh SQLite
file and on a fresh PostgreSQL database. A command costs about a second of interpreter start-up,
so each test ingests once and then asks its questions, independent reads in parallel.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_URL, seed_payloads

CLI = Path(sys.executable).parent / "partner-ledger"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "notifications.jsonl"
GENERATOR = ROOT / "scripts" / "generate_notifications.py"
TIMEOUT = 120

# The contract, as README states it (deliberately not imported from the code under test).
MEMBERSHIP_KEYS = [
    "org_id",
    "customer_id",
    "partner_program_id",
    "loyalty_program_id",
    "partner_program_name",
    "partner_program_type",
    "status",
    "link_inferred",
    "linked_at",
    "delinked_at",
    "tier_number",
    "tier_expiry_date",
    "tier_expiry_at",
    "membership_number",
    "membership_expiry_date",
    "membership_expiry_at",
    "scheduled_expiry_date",
    "last_update_type",
    "last_reminder_at",
    "event_count",
]
EXPIRY_KEYS = ["org_id", "customer_id", "partner_program_id", "kind", "date"]
EXPIRY_KINDS = {
    "membership": "membership_expiry_date",
    "tier": "tier_expiry_date",
    "scheduled": "scheduled_expiry_date",
}
TIMESTAMP_FIELDS = ("linked_at", "delinked_at", "last_reminder_at")
DATE_FIELDS = ("tier_expiry_date", "membership_expiry_date", "scheduled_expiry_date")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
SUMMARY_KEYS = {"received", "recorded", "duplicates", "quarantined", "quarantined_by_reason"}
SUMMARY_LINE = re.compile(
    r"received (\d+): recorded (\d+), duplicates (\d+), quarantined (\d+)(?: \((.+)\))?"
)
HISTORY_KEYS = {
    "position",
    "recorded_at",
    "occurred_at",
    "event",
    "update_type",
    "source",
    "changes",
    "anomalies",
    "late",
}
SOURCE_KEYS = {"event_name", "event_id", "ref_id", "api_request_id", "shape"}
SEEDS = seed_payloads()
TODAY = datetime.now(UTC).date()


# --- running the command -----------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One finished ``partner-ledger`` process."""

    command: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def ok(self) -> Run:
        assert self.returncode == 0, f"{self.command} exited {self.returncode}: {self.stderr}"
        assert self.stderr == "", f"{self.command} wrote to stderr: {self.stderr}"
        return self

    def json(self) -> Any:
        """The one JSON document the command printed."""
        self.ok()
        assert self.stdout.endswith("\n") and self.stdout.count("\n") == 1, self.stdout
        return json.loads(self.stdout)

    def json_lines(self) -> list[dict[str, Any]]:
        self.ok()
        return [json.loads(line) for line in self.stdout.splitlines()]

    def failed_with_one_sentence(self, status: int = 1) -> str:
        """The error line of a command that failed the documented way."""
        assert self.returncode == status, f"{self.command}: exit {self.returncode}, {self.stderr}"
        assert "Traceback" not in self.stderr, self.stderr
        assert self.stdout == "", self.stdout
        lines = self.stderr.splitlines()
        assert len(lines) == 1, f"{self.command}: expected one line on stderr, got {lines}"
        assert lines[0].startswith("partner-ledger: "), lines[0]
        return lines[0]


def _environment() -> dict[str, str]:
    """This process's environment without any PARTNER_LEDGER_* setting that could leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PARTNER_LEDGER_")}


def cli(*args: str | Path, db: str | None = None, stdin: str | None = None) -> Run:
    command = (str(CLI), *(("--db", db) if db else ()), *map(str, args))
    completed = subprocess.run(
        command,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_environment(),
    )
    return Run(command, completed.returncode, completed.stdout, completed.stderr)


def cli_all(db: str, *commands: Sequence[str | Path]) -> list[Run]:
    """Several independent commands on one ledger, run side by side, results in order."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: cli(*args, db=db), commands))


def ingest(db: str, path: Path, *extra: str) -> dict[str, Any]:
    summary = cli("ingest", path, "--json", *extra, db=db).json()
    assert isinstance(summary, dict)
    assert summary["received"] == (
        summary["recorded"] + summary["duplicates"] + summary["quarantined"]
    ), summary
    return summary


# --- inputs ------------------------------------------------------------------------------

BASE_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z
HOUR_MS = 3_600_000


def notification(
    event: str,
    *,
    customer: int,
    hours: float,
    event_id: str,
    details: dict[str, Any] | None = None,
    **data: Any,
) -> str:
    """One flat (shape B) notification of org 7, EXTERNAL partner program 70, as a JSON line."""
    body: dict[str, Any] = {
        "customerIdentifiers": {"customerId": customer},
        "loyaltyProgramId": 5,
        "partnerProgramId": 70,
        "partnerProgramName": "Club",
        "partnerProgramType": "EXTERNAL",
        **data,
    }
    if details is not None:
        body["customerPartnerProgramDetails"] = details
    return json.dumps(
        {
            "eventName": event,
            "eventId": event_id,
            "orgId": 7,
            "createdAt": BASE_MS + int(hours * HOUR_MS),
            "data": body,
        }
    )


def compact(raw: bytes) -> str:
    return json.dumps(json.loads(raw))


def write_lines(path: Path, lines: Sequence[str | bytes]) -> Path:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


def examples_plus(tmp_path: Path, lines: Sequence[str]) -> Path:
    """The 300 example notifications followed by some of our own."""
    path = tmp_path / "input.jsonl"
    path.write_bytes(EXAMPLES.read_bytes() + "".join(f"{line}\n" for line in lines).encode())
    return path


def membership_key(row: dict[str, Any]) -> tuple[int, int, int]:
    return (row["org_id"], row["customer_id"], row["partner_program_id"])


def expiry_order(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["date"], *membership_key(row), row["kind"])


def expected_expiry(memberships: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The expiry rows the memberships imply: one per LINKED membership and dated kind."""
    rows = [
        {**dict(zip(EXPIRY_KEYS[:3], membership_key(m), strict=True)), "kind": kind, "date": d}
        for m in memberships
        if m["status"] == "LINKED"
        for kind, field in EXPIRY_KINDS.items()
        if (d := m[field]) is not None
    ]
    return sorted(rows, key=expiry_order)


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def csv_rows(text: str) -> list[list[str]]:
    """The cells of a CSV export; booleans compared case-blind (``False`` or ``false``)."""
    return [
        [cell.lower() if cell in ("True", "False") else cell for cell in row]
        for row in csv.reader(io.StringIO(text))
    ]


# --- ingest ------------------------------------------------------------------------------

ENRICHED = [raw for name, raw in SEEDS.items() if name.endswith(".enriched.json")]
RAW = [raw for name, raw in SEEDS.items() if name.endswith(".raw.json")]


@dataclass(frozen=True)
class IngestCase:
    file_name: str | None  # None: the content goes to stdin as ``ingest -``
    content: bytes
    expected: dict[str, Any]


def _jsonl_with_blank_lines_and_redeliveries() -> bytes:
    lines = [compact(raw) for raw in ENRICHED]
    linked = json.loads(SEEDS["partnerProgramLinked.enriched.json"])
    linked["attributes"]["refId"] = "another-ref"  # not business content
    redelivered = json.dumps(linked, sort_keys=True, indent=None, separators=(",", ":"))
    text = (
        "\n"
        + f"{lines[0]}\r\n"
        + "   \n\t\n"
        + "\n".join(lines[1:])
        + "\n\n"
        + f"{lines[0]}\n"  # byte-identical redelivery
        + f"{redelivered}\n"  # same eventId and content, other bytes
        + "  \n"
    )
    return text.encode()


INGEST_CASES = {
    "a_json_file_holding_one_object_records_it": IngestCase(
        "linked.json",
        SEEDS["partnerProgramLinked.enriched.json"],
        {"received": 1, "recorded": 1, "duplicates": 0, "quarantined": 0, "by_reason": {}},
    ),
    "a_json_file_holding_an_array_takes_each_element_as_a_payload": IngestCase(
        "seeds.json",
        b"[" + b",\n".join(SEEDS.values()) + b"]",
        {
            "received": 8,
            "recorded": 4,
            "duplicates": 0,
            "quarantined": 4,
            "by_reason": {"BAD_TIMESTAMP": 4},
        },
    ),
    "json_lines_on_stdin_skip_blank_lines_and_count_redeliveries_as_duplicates": IngestCase(
        None,
        _jsonl_with_blank_lines_and_redeliveries(),
        {"received": 6, "recorded": 4, "duplicates": 2, "quarantined": 0, "by_reason": {}},
    ),
}


@pytest.mark.parametrize("case", INGEST_CASES.values(), ids=INGEST_CASES.keys())
def test_ingest_json_prints_one_summary_that_accounts_for_every_payload(
    db_url: str, tmp_path: Path, case: IngestCase
) -> None:
    if case.file_name is None:
        run = cli("ingest", "-", "--json", db=db_url, stdin=case.content.decode())
    else:
        path = tmp_path / case.file_name
        path.write_bytes(case.content)
        run = cli("ingest", path, "--json", db=db_url)

    summary = run.json()
    assert summary.keys() >= SUMMARY_KEYS | {"conflicts_retried", "seconds"}
    assert {
        "received": summary["received"],
        "recorded": summary["recorded"],
        "duplicates": summary["duplicates"],
        "quarantined": summary["quarantined"],
        "by_reason": summary["quarantined_by_reason"],
    } == case.expected
    assert summary["received"] == (
        summary["recorded"] + summary["duplicates"] + summary["quarantined"]
    )
    assert sum(summary["quarantined_by_reason"].values()) == summary["quarantined"]
    assert summary["conflicts_retried"] == 0


def test_ingest_off_a_terminal_prints_only_its_summary_line_and_a_second_ingest_records_nothing(
    db_url: str,
) -> None:
    first = cli("ingest", EXAMPLES, db=db_url)
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""  # no progress bar when stderr is not a terminal
    assert first.stdout.count("\n") == 1, first.stdout
    match = SUMMARY_LINE.fullmatch(first.stdout.rstrip("\n"))
    assert match, first.stdout
    received, recorded, duplicates, quarantined = (int(g) for g in match.groups()[:4])
    non_blank = [line for line in EXAMPLES.read_bytes().splitlines() if line.strip()]
    assert received == len(non_blank) == recorded + duplicates + quarantined
    assert recorded > 0 and duplicates > 0 and quarantined > 0  # the sample has all three
    by_reason = dict(item.rsplit(" ", 1) for item in (match.group(5) or "").split(", ") if item)
    assert sum(int(n) for n in by_reason.values()) == quarantined

    again = ingest(db_url, EXAMPLES)
    assert again["received"] == received
    assert again["recorded"] == 0
    assert again["duplicates"] == recorded + duplicates
    assert again["quarantined"] == quarantined
    assert again["quarantined_by_reason"] == {k: int(v) for k, v in by_reason.items()}


# --- exports and queries -----------------------------------------------------------------


def _near_today_lines() -> list[str]:
    """Memberships with expiry dates around today, so ``--within 30d`` has something to find;
    customer 801's is delinked and must not appear in any expiry answer."""
    soon, later = TODAY + timedelta(days=10), TODAY + timedelta(days=45)
    linked = {"partnerTierNumber": 1, "partnerTierExpiryDate": later.isoformat()}
    return [
        notification(
            "partnerProgramLinked",
            customer=800,
            hours=0,
            event_id="soon-1",
            details={**linked, "membershipExpiryDate": soon.isoformat()},
        ),
        notification(
            "partnerProgramLinked",
            customer=801,
            hours=0,
            event_id="soon-2",
            details={"membershipExpiryDate": (TODAY + timedelta(days=5)).isoformat()},
        ),
        notification("partnerProgramDelinked", customer=801, hours=1, event_id="soon-3"),
    ]


def _in(start: date | None, end: date | None, **equal: Any) -> Any:
    """Which expiry rows an ``expiring`` question keeps."""

    def keep(row: dict[str, Any]) -> bool:
        return (
            (start is None or row["date"] >= start.isoformat())
            and (end is None or row["date"] <= end.isoformat())
            and all(row[k] == v for k, v in equal.items())
        )

    return keep


# name: (arguments, which export rows it keeps, --limit or None for the default of 100)
EXPIRING_CASES: dict[str, tuple[tuple[str, ...], Any, int | None]] = {
    "from_to_is_an_inclusive_window_ordered_by_date_then_key": (
        ("--from", "2025-01-01", "--to", "2025-12-31"),
        _in(date(2025, 1, 1), date(2025, 12, 31)),
        None,
    ),
    "within_without_from_starts_today": (
        ("--within", "30d"),
        _in(TODAY, TODAY + timedelta(days=30)),
        None,
    ),
    "within_counts_days_from_from_kind_keeps_one_kind_and_limit_the_first_rows": (
        ("--from", "2024-03-01", "--within", "400d", "--kind", "tier", "--limit", "3"),
        _in(date(2024, 3, 1), date(2025, 4, 4), kind="tier"),
        3,
    ),
}


def test_exports_follow_the_documented_format_and_expiring_and_tiers_agree_with_them(
    db_url: str, tmp_path: Path
) -> None:
    summary = ingest(db_url, examples_plus(tmp_path, _near_today_lines()))
    jsonl, as_csv, expiry, tiers, *answers = cli_all(
        db_url,
        ("export", "memberships"),
        ("export", "memberships", "--format", "csv"),
        ("export", "expiry"),
        ("tiers", "--json"),
        *(("expiring", *args, "--json") for args, _, _ in EXPIRING_CASES.values()),
    )

    # export memberships: the 18 keys in order, formats, sorted by key, one line each
    memberships = jsonl.json_lines()
    assert memberships
    for row in memberships:
        assert list(row) == MEMBERSHIP_KEYS, row
        assert all(isinstance(row[k], int) for k in ("org_id", "customer_id", "event_count"))
        assert isinstance(row["partner_program_id"], int)
        assert isinstance(row["link_inferred"], bool)
        assert row["status"] in {"LINKED", "DELINKED"}
        assert (row["delinked_at"] is None) == (row["status"] == "LINKED"), row
        assert row["tier_number"] is None or isinstance(row["tier_number"], int)
        for field in TIMESTAMP_FIELDS:
            assert row[field] is None or TIMESTAMP.fullmatch(row[field]), (field, row)
        for field in DATE_FIELDS:
            assert row[field] is None or DATE.fullmatch(row[field]), (field, row)
    keys = [membership_key(row) for row in memberships]
    assert keys == sorted(set(keys)), "sorted by (org, customer, program), each once"
    assert sum(row["event_count"] for row in memberships) == summary["recorded"]
    assert any(row["linked_at"] for row in memberships)
    assert any(row["tier_expiry_date"] for row in memberships)

    table = csv_rows(as_csv.ok().stdout)
    assert table[0] == MEMBERSHIP_KEYS
    assert table[1:] == [[csv_cell(v) for v in row.values()] for row in memberships]

    # export expiry: five keys, sorted by date then key, one row per LINKED dated kind
    rows = expiry.json_lines()
    assert rows
    assert all(list(row) == EXPIRY_KEYS for row in rows)
    assert all(row["kind"] in EXPIRY_KINDS and DATE.fullmatch(row["date"]) for row in rows)
    assert [expiry_order(r) for r in rows] == sorted({expiry_order(r) for r in rows})
    assert rows == expected_expiry(memberships)
    linked = {membership_key(m) for m in memberships if m["status"] == "LINKED"}
    assert {membership_key(row) for row in rows} <= linked
    delinked_with_dates = [
        m for m in memberships if m["status"] == "DELINKED" and any(m[f] for f in DATE_FIELDS)
    ]
    assert delinked_with_dates, "the input must exercise the LINKED-only rule"

    # expiring: the export's rows in the window, in the export's order
    for (name, (_, keep, limit)), answer in zip(EXPIRING_CASES.items(), answers, strict=True):
        expected = [row for row in rows if keep(row)]
        assert expected, f"{name}: the input must give this case something to find"
        if limit is None:
            assert len(expected) <= 100, f"{name}: the default limit would cut"
        else:
            assert len(expected) > limit, f"{name}: the limit must cut something"
        assert answer.json() == expected[:limit], name
    soon = answers[list(EXPIRING_CASES).index("within_without_from_starts_today")].json()
    found = {(r["customer_id"], r["kind"]) for r in soon}
    assert (800, "membership") in found  # in 10 days
    assert (800, "tier") not in found  # in 45 days
    assert not any(r["customer_id"] == 801 for r in soon), "delinked: no expiry"

    # tiers: LINKED memberships counted per (org, program, tier)
    counted = Counter(
        (m["org_id"], m["partner_program_id"], m["tier_number"])
        for m in memberships
        if m["status"] == "LINKED"
    )
    listed = tiers.json()
    assert all(
        set(row) == {"org_id", "partner_program_id", "tier_number", "memberships"} for row in listed
    )
    assert len(listed) == len(counted)
    assert {
        (r["org_id"], r["partner_program_id"], r["tier_number"]): r["memberships"] for r in listed
    } == dict(counted)
    groups = [(r["org_id"], r["partner_program_id"]) for r in listed]
    assert groups == sorted(groups)


def test_the_same_stream_exports_byte_identical_memberships_from_sqlite_and_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    stream = tmp_path / "stream.jsonl"
    subprocess.run(
        [sys.executable, GENERATOR, "--count", "400", "--seed", "11", "--shuffle", "--out", stream],
        check=True,
        timeout=TIMEOUT,
    )
    sqlite_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with ThreadPoolExecutor(max_workers=2) as pool:
        on_sqlite = pool.submit(ingest, sqlite_url, stream)
        on_postgres = pool.submit(ingest, postgres_url, stream, "--batch-size", "7")
        summaries = [on_sqlite.result(), on_postgres.result()]
    counts = [{k: v for k, v in s.items() if k in SUMMARY_KEYS} for s in summaries]
    assert counts[0] == counts[1]
    assert counts[0]["recorded"] > 300

    with ThreadPoolExecutor(max_workers=4) as pool:
        sqlite_memberships, sqlite_expiry, postgres_memberships, postgres_expiry = pool.map(
            lambda url_view: cli("export", url_view[1], db=url_view[0]),
            [
                (url, view)
                for url in (sqlite_url, postgres_url)
                for view in ("memberships", "expiry")
            ],
        )
    assert sqlite_memberships.ok().stdout.count("\n") > 50
    assert sqlite_memberships.stdout == postgres_memberships.ok().stdout
    assert sqlite_expiry.ok().stdout == postgres_expiry.ok().stdout


def test_tiers_lists_the_same_rows_in_the_same_order_on_sqlite_and_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    """One program with tiered and untiered LINKED members: SQL puts NULL first on SQLite and
    last on PostgreSQL unless the query says where."""
    path = write_lines(
        tmp_path / "tiers.jsonl",
        [
            notification(
                "partnerProgramLinked",
                customer=1,
                hours=0,
                event_id="t-1",
                details={"partnerTierNumber": 2},
            ),
            notification("partnerProgramLinked", customer=2, hours=0, event_id="t-2"),
            notification(
                "partnerProgramLinked",
                customer=3,
                hours=0,
                event_id="t-3",
                details={"partnerTierNumber": 1},
            ),
        ],
    )
    sqlite_url = f"sqlite:///{tmp_path / 'ledger.db'}"

    def tiers_after_ingest(url: str) -> Any:
        assert ingest(url, path)["recorded"] == 3
        return cli("tiers", "--json", db=url).json()

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(tiers_after_ingest, (sqlite_url, postgres_url)))
    tiers = [[row["tier_number"] for row in answer] for answer in answers]
    assert sorted(tiers[0], key=str) == [1, 2, None]
    assert answers[0] == answers[1], f"sqlite lists tiers {tiers[0]}, postgresql {tiers[1]}"


# --- one membership ----------------------------------------------------------------------

STORY = [
    notification(
        "partnerProgramUpdated",
        customer=700,
        hours=2,
        event_id="story-1",
        updateType="UPGRADE",
        details={"partnerTierNumber": 2, "partnerTierExpiryDate": "2031-01-01"},
    ),
    notification(
        "partnerProgramLinked",
        customer=700,
        hours=0,
        event_id="story-2",
        details={"partnerTierNumber": 1, "membershipNumber": "M-1"},
    ),
    notification("partnerProgramDelinked", customer=700, hours=3, event_id="story-3"),
    notification("partnerProgramDelinked", customer=700, hours=4, event_id="story-4"),
    # the update again under another eventId: the same business content, a duplicate
    notification(
        "partnerProgramUpdated",
        customer=700,
        hours=2,
        event_id="story-5",
        updateType="UPGRADE",
        details={"partnerTierNumber": 2, "partnerTierExpiryDate": "2031-01-01"},
    ),
]

# (event, update type, eventId, changes, anomalies, late), in recording order
STORY_HISTORY = [
    (
        "partnerProgramUpdated",
        "UPGRADE",
        "story-1",
        {
            "tier_number": [1, 2],
            "tier_expiry_date": [None, "2031-01-01"],
            "last_update_type": [None, "UPGRADE"],
        },
        ["UPDATE_WITHOUT_LINK"],
        False,
    ),
    (
        "partnerProgramLinked",
        None,
        "story-2",
        {
            "loyalty_program_id": [None, 5],
            "partner_program_name": [None, "Club"],
            "partner_program_type": [None, "EXTERNAL"],
            "status": [None, "LINKED"],
            "linked_at": [None, "2023-11-14T22:13:20.000Z"],
            "tier_number": [None, 1],
            "membership_number": [None, "M-1"],
        },
        [],
        True,
    ),
    (
        "partnerProgramDelinked",
        None,
        "story-3",
        {"status": ["LINKED", "DELINKED"], "delinked_at": [None, "2023-11-15T01:13:20.000Z"]},
        [],
        False,
    ),
    ("partnerProgramDelinked", None, "story-4", {}, ["DOUBLE_DELINK"], False),
]


def check_history(history: list[dict[str, Any]], membership: dict[str, Any]) -> None:
    """What holds for every membership's history, checked against its export line."""
    assert len(history) == membership["event_count"]
    positions = [entry["position"] for entry in history]
    assert positions == sorted(set(positions)) and all(isinstance(p, int) for p in positions)
    recorded_at = [entry["recorded_at"] for entry in history]
    assert recorded_at == sorted(recorded_at)
    for index, entry in enumerate(history):
        assert entry.keys() >= HISTORY_KEYS, entry
        assert TIMESTAMP.fullmatch(entry["recorded_at"]) and TIMESTAMP.fullmatch(
            entry["occurred_at"]
        )
        assert entry["source"].keys() >= SOURCE_KEYS
        assert entry["event"] == entry["source"]["event_name"]
        assert all(isinstance(a, str) for a in entry["anomalies"])
        earlier = history[:index]
        assert entry["late"] == any(e["occurred_at"] > entry["occurred_at"] for e in earlier)
        for before, after in entry["changes"].values():
            assert before != after, entry
    # Replayed in occurrence order, each field's changes chain from null to its exported value.
    value: dict[str, Any] = {}
    for entry in sorted(history, key=lambda e: (e["occurred_at"], e["position"])):
        for field, (before, after) in entry["changes"].items():
            assert before == value.get(field), (field, entry)
            value[field] = after
    for field in set(value) & set(MEMBERSHIP_KEYS):
        assert value[field] == membership[field], field


def test_membership_equals_its_export_line_and_history_lists_its_events_in_recording_order(
    db_url: str, tmp_path: Path
) -> None:
    summary = ingest(db_url, examples_plus(tmp_path, STORY))
    assert summary["duplicates"] >= 1
    export, story, story_history = cli_all(
        db_url,
        ("export", "memberships"),
        ("membership", "7", "700", "70", "--json"),
        ("history", "7", "700", "70", "--json"),
    )
    lines = {membership_key(json.loads(line)): line for line in export.ok().stdout.splitlines()}

    assert story.json() == json.loads(lines[(7, 700, 70)])
    assert story.stdout == lines[(7, 700, 70)] + "\n"
    assert {k: v for k, v in story.json().items() if k not in ("linked_at", "delinked_at")} == {
        "org_id": 7,
        "customer_id": 700,
        "partner_program_id": 70,
        "loyalty_program_id": 5,
        "partner_program_name": "Club",
        "partner_program_type": "EXTERNAL",
        "status": "DELINKED",
        "link_inferred": False,
        "tier_number": 2,
        "tier_expiry_date": "2031-01-01",
        "tier_expiry_at": None,
        "membership_number": "M-1",
        "membership_expiry_date": None,
        "membership_expiry_at": None,
        "scheduled_expiry_date": None,
        "last_update_type": "UPGRADE",
        "last_reminder_at": None,
        "event_count": 4,
    }
    history = story_history.json_lines()
    assert [
        (
            e["event"],
            e["update_type"],
            e["source"]["event_id"],
            e["changes"],
            e["anomalies"],
            e["late"],
        )
        for e in history
    ] == STORY_HISTORY
    assert [e["occurred_at"] for e in history] == [
        "2023-11-15T00:13:20.000Z",
        "2023-11-14T22:13:20.000Z",
        "2023-11-15T01:13:20.000Z",
        "2023-11-15T02:13:20.000Z",
    ]
    assert {e["source"]["shape"] for e in history} == {"B"}
    check_history(history, json.loads(lines[(7, 700, 70)]))

    # The busiest membership of the examples: late arrivals, relinks, anomalies.
    busiest = max(lines, key=lambda key: json.loads(lines[key])["event_count"])
    history = cli("history", *map(str, busiest), "--json", db=db_url).json_lines()
    check_history(history, json.loads(lines[busiest]))
    assert any(entry["late"] for entry in history)


# --- quarantine --------------------------------------------------------------------------


def qid(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def test_quarantine_list_and_show_keep_each_bad_payload_once_with_its_raw_bytes(
    db_url: str, tmp_path: Path
) -> None:
    raw_linked = compact(SEEDS["partnerProgramLinked.raw.json"]).encode()
    truncated = b'{"eventName": "partnerProgramLinked", "orgId": '
    not_utf8 = b'{"eventName": "\xff\xfe"}'
    an_array = b"[1, 2, 3]"
    good = notification("partnerProgramLinked", customer=900, hours=0, event_id="q-1").encode()
    collision = notification("partnerProgramLinked", customer=901, hours=0, event_id="q-1")
    unknown = notification("partnerProgramPaused", customer=902, hours=0, event_id="q-2")
    lines = [raw_linked, raw_linked, truncated, not_utf8, an_array, good, collision, unknown]
    first = ingest(db_url, write_lines(tmp_path / "bad.jsonl", lines))
    assert first["recorded"] == 1 and first["duplicates"] == 0
    assert first["quarantined_by_reason"] == {
        "BAD_TIMESTAMP": 2,
        "NOT_JSON": 2,
        "NOT_AN_OBJECT": 1,
        "ID_COLLISION": 1,
        "UNKNOWN_EVENT": 1,
    }
    seed_file = tmp_path / "delinked.raw.json"
    seed_file.write_bytes(SEEDS["partnerProgramDelinked.raw.json"])
    assert ingest(db_url, seed_file)["quarantined_by_reason"] == {"BAD_TIMESTAMP": 1}

    expected = {
        qid(raw_linked): ("BAD_TIMESTAMP", 2),
        qid(truncated): ("NOT_JSON", 1),
        qid(not_utf8): ("NOT_JSON", 1),
        qid(an_array): ("NOT_AN_OBJECT", 1),
        qid(collision.encode()): ("ID_COLLISION", 1),
        qid(unknown.encode()): ("UNKNOWN_EVENT", 1),
        qid(seed_file.read_bytes()): ("BAD_TIMESTAMP", 1),
    }
    listing, show_bad_bytes, show_file = cli_all(
        db_url,
        ("quarantine", "list", "--json"),
        ("quarantine", "show", qid(not_utf8), "--json"),
        ("quarantine", "show", qid(seed_file.read_bytes())[:8]),
    )

    entries = listing.json()
    assert {e["id"]: (e["reason"], e["times_received"]) for e in entries} == expected
    for entry in entries:
        assert entry.keys() >= {"id", "reason", "detail", "received_at", "times_received"}
        assert entry["detail"] and TIMESTAMP.fullmatch(entry["received_at"])
        assert entry["resolved_at"] is None and entry["resolution"] is None

    assert "createdAt" in next(e for e in entries if e["id"] == qid(raw_linked))["detail"]

    shown = show_bad_bytes.json()
    assert (shown["id"], shown["reason"]) == (qid(not_utf8), "NOT_JSON")
    assert shown["raw"] == not_utf8.decode("utf-8", errors="replace")
    fields, raw = show_file.ok().stdout.split("raw:\n", 1)
    assert raw == seed_file.read_text() + "\n"  # the file's bytes exactly, not re-encoded
    assert re.search(r"^reason\s+BAD_TIMESTAMP\s*$", fields, re.MULTILINE), fields  # table row


def test_quarantine_replay_leaves_still_bad_payloads_quarantined_as_they_were(
    db_url: str, tmp_path: Path
) -> None:
    lines = [compact(raw) for raw in RAW] + ["{not json"]
    ids = {qid(line.encode()) for line in lines}
    assert ingest(db_url, write_lines(tmp_path / "raw.jsonl", lines))["quarantined"] == 5
    first = qid(lines[0].encode())

    one = cli("quarantine", "replay", first[:10], "--json", db=db_url).json()
    every = cli("quarantine", "replay", "--json", db=db_url).json()
    entries = cli("quarantine", "list", "--all", "--json", db=db_url).json()

    assert [(r["id"], r["status"], r["reason"]) for r in one] == [
        (first, "quarantined", "BAD_TIMESTAMP")
    ]
    assert sorted(r["id"] for r in every) == sorted(ids)
    assert all(r["status"] == "quarantined" and r["quarantine_id"] == r["id"] for r in every)
    reasons = {r["id"]: r["reason"] for r in every}
    assert Counter(reasons.values()) == {"BAD_TIMESTAMP": 4, "NOT_JSON": 1}
    assert {e["id"]: e["reason"] for e in entries} == reasons
    assert all(e["resolved_at"] is None and e["resolution"] is None for e in entries)
    assert all(e["times_received"] == 1 for e in entries), "a replay is not a receipt"
    moved = {e["id"]: (e["received_at"], e["last_received_at"]) for e in entries}
    assert all(received == last for received, last in moved.values()), (
        f"received once, yet a replay moved last_received_at: {moved}"
    )


# --- views -------------------------------------------------------------------------------


def test_views_are_current_after_ingest_and_a_rebuild_switches_without_changing_a_row(
    db_url: str,
) -> None:
    summary = ingest(db_url, EXAMPLES)
    ledger = cli("status", "--json", db=db_url).json()
    assert ledger["recorded"] == summary["recorded"]
    assert 0 < ledger["quarantined_open"] <= summary["quarantined"]
    head = ledger["head_position"]
    assert head >= summary["recorded"]
    assert {v["view"] for v in ledger["views"]} == {"memberships", "expiry", "activity"}
    for view in ledger["views"]:
        assert (view["head"], view["position"], view["lag_events"]) == (head, head, 0), view
        assert view["dead_letters"] == 0
        assert view["schema_version"] == view["code_schema_version"]
    generations = {v["view"]: v["generation"] for v in ledger["views"]}

    rebuilt = cli("rebuild", "--json", db=db_url).json()
    assert {r["view"] for r in rebuilt} == set(generations)
    for report in rebuilt:
        assert report["switched"] is True
        assert report["from_generation"] == generations[report["view"]]
        assert report["to_generation"] > report["from_generation"]
        assert (report["changed"], report["added"], report["removed"]) == (0, 0, 0)
        assert report["position"] == head
        assert report["events"] == summary["recorded"]

    diff = cli("rebuild", "--diff", "--json", db=db_url).json()
    live = {r["view"]: r["to_generation"] for r in rebuilt}
    for report in diff:
        assert report["switched"] is False
        assert report["from_generation"] == live[report["view"]]
        assert (report["changed"], report["added"], report["removed"]) == (0, 0, 0)
        assert report["sample"] == []

    after = cli("project", "--status", "--json", db=db_url).json()
    assert {v["view"]: v["generation"] for v in after["views"]} == live  # --diff kept them
    assert all((v["position"], v["lag_events"]) == (head, 0) for v in after["views"])
    assert after["dead_letters"] == []


# --- errors ------------------------------------------------------------------------------

ERROR_CASES: dict[str, tuple[str, str]] = {
    "an_unknown_url_scheme": ("mysql://x", "mysql://x"),
    "a_refused_connection": ("postgresql://postgres@127.0.0.1:1/nope", "refused"),
    "a_postgresql_database_that_does_not_exist": (
        f"{ADMIN_URL.rsplit('/', 1)[0]}/pl_missing_{secrets.token_hex(4)}",
        "does not exist",
    ),
    "an_sqlite_file_in_a_missing_directory": ("sqlite:////nonexistent/dir/x.db", "x.db"),
    "a_refused_connection_without_echoing_the_password": (
        "postgresql://postgres:s3cret@127.0.0.1:1/nope",
        "***",
    ),
}


@pytest.mark.parametrize("case", ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_an_unusable_database_is_one_sentence_on_stderr_and_exit_1(
    case: tuple[str, str],
) -> None:
    url, words = case
    line = cli("status", db=url).failed_with_one_sentence()
    assert words in line
    assert "s3cret" not in line
    assert not Path("/nonexistent").exists()


# name: (arguments, words the error names)
BAD_REQUESTS: dict[str, tuple[tuple[str, ...], str]] = {
    "ingest_of_a_missing_file": (("ingest", "/nonexistent/file"), "/nonexistent/file"),
    "a_membership_never_seen": (("membership", "7", "700", "71", "--json"), "71"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_bad_request_to_a_working_ledger_is_one_sentence_on_stderr_and_exit_1(
    db_url: str, case: tuple[tuple[str, ...], str]
) -> None:
    args, words = case
    cli("project", db=db_url).ok()  # a working ledger: read-only commands create none
    assert words in cli(*args, db=db_url).failed_with_one_sentence()


USAGE_CASES: dict[str, tuple[str, ...]] = {
    "no_command": (),
    "a_date_that_is_not_a_date": ("expiring", "--from", "soon"),
    "a_membership_id_beyond_64_bits": ("membership", "7", "700", str(2**64), "--json"),
    "an_org_beyond_64_bits": ("tiers", "--org", str(2**64)),
    "a_program_beyond_64_bits": ("expiring", "--program", str(2**64)),
    "a_negative_limit": ("expiring", "--limit", "-1"),
}


@pytest.mark.parametrize("args", USAGE_CASES.values(), ids=USAGE_CASES.keys())
def test_a_usage_error_exits_2_with_usage_on_stderr(args: tuple[str, ...]) -> None:
    run = cli(*args, db="sqlite:////nonexistent/dir/never-opened.db")
    assert run.returncode == 2, run
    assert run.stdout == ""
    assert "usage: partner-ledger" in run.stderr
    assert "Traceback" not in run.stderr
