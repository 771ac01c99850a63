"""A ledger for the dashboard tests: generated notifications ingested by the real CLI, plus a
few hand-made memberships (hostile program names, a tier history with a late arrival, a
delink) delivered to the real webhook, and one quarantine entry the current code accepts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from domain.ledger import quarantine_id
from tests.e2e.http_server import Server

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "partner-ledger")
ORG = 424242
SCRIPT_NAME = "<script>alert(1)</script>"
ATTRIBUTE_NAME = '" onmouseover="alert(2)" data-x="'
MOBILE = "6590000001"
EMAIL = "someone.private@example.com"
DAY_MS = 86_400_000


@dataclass
class Tiers:
    """The hand-made membership whose tier went 1 -> 2 -> 3 (the 2 arrived last: late)."""

    customer: int
    program: int
    linked_ms: int
    second_ms: int
    third_ms: int


@dataclass
class World:
    db_url: str
    stream: Path
    tiers: Tiers
    replayable: str  # the id of a quarantine entry the current code accepts
    replayable_key: tuple[int, int, int]
    identifiers: set[str] = field(default_factory=set)


def cli(db_url: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real command line, against ``db_url``; fails the test on a non-zero exit."""
    done = subprocess.run(
        [CLI, "--db", db_url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def rows_printed(output: str) -> list[dict[str, Any]]:
    """A JSON array, or JSON Lines: what ``--json`` prints."""
    text = output.strip()
    if not text:
        return []
    if text.startswith("["):
        rows: list[dict[str, Any]] = json.loads(text)
        return rows
    return [json.loads(line) for line in text.splitlines()]


def notification(
    name: str,
    *,
    customer: int,
    program: int,
    at_ms: int,
    program_name: str = "Sky Miles",
    update_type: str | None = None,
    **details: Any,
) -> bytes:
    """A flat (shape B) notification carrying a mobile and an email, as Capillary sends."""
    return json.dumps(
        {
            "eventName": name,
            "eventId": f"dash-{name}-{customer}-{program}-{at_ms}",
            "orgId": ORG,
            "createdAt": at_ms,
            "data": {
                "customerIdentifiers": {
                    "customerId": customer,
                    "instore": {"mobile": MOBILE, "email": EMAIL},
                },
                "loyaltyProgramId": 855,
                "partnerProgramId": program,
                "partnerProgramName": program_name,
                "partnerProgramType": "EXTERNAL",
                "updateType": update_type,
                "customerPartnerProgramDetails": details,
            },
        }
    ).encode()


def generate(path: Path, *, count: int, seed: int) -> None:
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "generate_notifications.py"),
            "--count",
            str(count),
            "--seed",
            str(seed),
            "--out",
            str(path),
        ],
        check=True,
        timeout=120,
    )


def identifiers_in(path: Path) -> set[str]:
    """Every mobile and email the stream carries (both as sent and without spaces)."""
    found: set[str] = set()
    for match in re.finditer(r'"(?:mobile|email)"\s*:\s*"([^"]{6,})"', path.read_text()):
        found.add(match.group(1).strip())
        found.add("".join(match.group(1).split()))
    return found


def build(server: Server, db_url: str, work: Path) -> World:
    """Ingest a generated stream with the CLI, then deliver the hand-made notifications to the
    running server's webhook and plant a quarantine entry that the current code accepts."""
    now_ms = int(time.time() * 1000)
    tiers = Tiers(
        customer=9002,
        program=503,
        linked_ms=now_ms - 40 * DAY_MS,
        second_ms=now_ms - 20 * DAY_MS,
        third_ms=now_ms - 10 * DAY_MS,
    )
    expiry = (datetime.now(UTC) + timedelta(days=45)).date().isoformat()
    deliveries = [
        notification(
            "partnerProgramLinked",
            customer=9001,
            program=501,
            at_ms=now_ms - 5 * DAY_MS,
            program_name=SCRIPT_NAME,
            partnerTierNumber=1,
        ),
        notification(
            "partnerProgramLinked",
            customer=9001,
            program=502,
            at_ms=now_ms - 4 * DAY_MS,
            program_name=ATTRIBUTE_NAME,
            partnerTierNumber=2,
        ),
        notification(
            "partnerProgramLinked",
            customer=tiers.customer,
            program=tiers.program,
            at_ms=tiers.linked_ms,
            partnerTierNumber=1,
            membershipExpiryDate=expiry,
        ),
        notification(
            "partnerProgramUpdated",
            customer=tiers.customer,
            program=tiers.program,
            at_ms=tiers.third_ms,
            update_type="UPGRADE",
            partnerTierNumber=3,
        ),
        # Occurred before the one above, delivered after it: a late arrival.
        notification(
            "partnerProgramUpdated",
            customer=tiers.customer,
            program=tiers.program,
            at_ms=tiers.second_ms,
            update_type="UPGRADE",
            partnerTierNumber=2,
        ),
        notification("partnerProgramLinked", customer=9003, program=503, at_ms=now_ms - 3 * DAY_MS),
        notification(
            "partnerProgramDelinked", customer=9003, program=503, at_ms=now_ms - 2 * DAY_MS
        ),
        # A payload no code accepts, with a hostile event name: quarantined, shown escaped.
        json.dumps(
            {"eventName": SCRIPT_NAME, "orgId": ORG, "data": {"mobile": MOBILE, "email": EMAIL}}
        ).encode(),
    ]
    positions = []
    for body in deliveries:
        answer = server.post(body)
        assert answer.status_code == 200, answer.text
        positions.append(answer.json().get("position") or 0)
    # Every view holds them before any page is compared with the API.
    assert server.get("/overview", min_position=max(positions)).status_code == 200
    # An entry quarantined by an older release (say, before it knew this event) that the
    # current code accepts: the replay case.
    replay_key = (ORG, 9004, 503)
    raw = notification(
        "partnerProgramLinked", customer=replay_key[1], program=replay_key[2], at_ms=now_ms
    )
    entry = quarantine_id(raw)
    received_us = now_ms * 1000
    with psycopg.connect(db_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            "INSERT INTO ledger_quarantine (id, raw, reason, detail, received_at_us, "
            "last_received_at_us, times_received) VALUES (%s, %s, %s, %s, %s, %s, 1)",
            (
                entry,
                raw,
                "UNKNOWN_EVENT",
                "an event this release did not know",
                received_us,
                received_us,
            ),
        )
    return World(
        db_url=db_url,
        stream=work / "stream.jsonl",
        tiers=tiers,
        replayable=entry,
        replayable_key=replay_key,
        identifiers=identifiers_in(work / "stream.jsonl") | {MOBILE, EMAIL},
    )


def iso_ms(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat(timespec="seconds")
