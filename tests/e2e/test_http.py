"""The HTTP service, end to end: real ``serve`` processes on loopback against PostgreSQL.

Most tests share one server (two worker processes) on one database, each test under its own
org ids so none reads another's data. The tests that stop the server or the database (shutdown,
outage) and the one with a different configuration (signatures) get servers of their own.
Every answer is checked against the store itself, not only by its status code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from domain.notifications import parse_notification
from tests.conftest import ADMIN_URL, PostgresServer, generated
from tests.e2e.http_server import (
    READ_TOKEN,
    ROOT,
    WEBHOOK_SECRET,
    Server,
    free_port,
    running_server,
    serve_command,
    server_env,
)

CLI = Path(sys.executable).parent / "partner-ledger"
ST = Path(sys.executable).parent / "st"
MIB = 1024 * 1024
_random = random.SystemRandom()


# --- payloads ----------------------------------------------------------------------------


def new_org() -> int:
    return _random.randrange(10**6, 10**12)


def notification(
    org: int,
    customer: int,
    program: int,
    *,
    event: str = "partnerProgramLinked",
    at_ms: int = 1_700_000_000_000,
    event_id: str | None = None,
    details: dict[str, Any] | None = None,
    update_type: str | None = None,
    scheduled: str | None = None,
    identifiers: dict[str, str] | None = None,
    envelope: bool = False,
) -> bytes:
    """A Capillary notification in shape B (flat), or A (``envelope``)."""
    data: dict[str, Any] = {
        "customerIdentifiers": {"customerId": customer, "instore": identifiers or {}},
        "loyaltyProgramId": 900,
        "partnerProgramId": program,
        "partnerProgramName": "Test Riders",
        "partnerProgramType": "SUPPLEMENTARY",
    }
    if details is not None:
        data["customerPartnerProgramDetails"] = details
    if update_type is not None:
        data["updateType"] = update_type
    if scheduled is not None:
        data["scheduledExpiryDate"] = scheduled
    ids = {
        "refId": f"{org}_{uuid4().hex[:10]}",
        "apiRequestId": uuid4().hex,
    }
    body: dict[str, Any]
    if envelope:
        body = {
            "eventId": event_id or str(uuid4()),
            "eventType": event,
            "consumerGroupId": None,
            "actionType": "START",
            "timeStamp": at_ms + 20,
            "attributes": {"createdAt": at_ms, "data": data, "eventName": event, "orgId": org}
            | ids,
        }
    else:
        body = {"eventName": event, "eventId": event_id or str(uuid4()), "orgId": org}
        body |= ids | {"createdAt": at_ms, "data": data, "loyaltyEventId": None}
    return json.dumps(body).encode()


# --- the store ---------------------------------------------------------------------------


def recorded_positions(server: Server, org: int) -> list[int]:
    rows = server.sql(
        "SELECT e.notification_id FROM partnerledger_events e JOIN ledger_inbox i "
        "USING (originator_id, originator_version) WHERE i.org_id = %s ORDER BY 1",
        (org,),
    )
    return [row[0] for row in rows]


def quarantine_row(server: Server, raw: bytes) -> tuple[str, str, bytes] | None:
    rows = server.sql("SELECT id, reason, raw FROM ledger_quarantine WHERE raw = %s", (raw,))
    return (rows[0][0], rows[0][1], bytes(rows[0][2])) if rows else None


def metric_samples(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = server.client.get("/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture(scope="module")
def server(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = postgres.create()
    try:
        with running_server(url, tmp_path_factory.mktemp("http"), "--workers", "2") as running:
            yield running
    finally:
        postgres.drop(url)


# --- starting ----------------------------------------------------------------------------


def test_serve_refuses_to_start_without_a_webhook_secret(tmp_path: Path) -> None:
    env = server_env()
    del env["PARTNER_LEDGER_WEBHOOK_SECRETS"]
    result = subprocess.run(
        serve_command(f"sqlite:///{tmp_path / 'ledger.db'}", "--port", str(free_port())),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "set PARTNER_LEDGER_WEBHOOK_SECRETS" in result.stderr
    assert "Traceback" not in result.stderr
    # Refused before touching the store.
    assert not (tmp_path / "ledger.db").exists()


def test_health_and_readiness_report_the_views(server: Server) -> None:
    assert server.client.get("/healthz").json() == {"status": "ok"}
    ready = server.client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert set(body["views"]) == {"memberships", "expiry", "activity"}
    assert all(view["lag_events"] <= body["head"] for view in body["views"].values())


def test_keep_alive_answers_are_not_held_back_with_several_workers(server: Server) -> None:
    """uvicorn's own multi-worker listener leaves TCP_NODELAY off (its issue #3149), so each
    keep-alive answer after the first waited ~40 ms for a delayed ACK; serve binds its own."""
    with httpx.Client(base_url=server.url) as client:
        client.get("/healthz")
        durations = []
        for _ in range(21):
            started = time.perf_counter()
            client.get("/healthz")
            durations.append(time.perf_counter() - started)
    assert statistics.median(durations) < 0.025


# --- the answer policy -------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Webhook-Token": "not-the-secret"},
        {"X-Webhook-Token": WEBHOOK_SECRET + "x"},
        {"X-Webhook-Token": READ_TOKEN},
        {"Authorization": f"Bearer {WEBHOOK_SECRET}"},
    ],
    ids=["missing", "wrong", "longer", "read-token", "wrong-header"],
)
def test_bad_or_missing_webhook_credentials_get_401_and_nothing_is_stored(
    server: Server, headers: dict[str, str]
) -> None:
    org = new_org()
    body = notification(org, 1, 1)
    answer = server.client.post("/webhooks/capillary", content=body, headers=headers)
    assert answer.status_code == 401
    assert recorded_positions(server, org) == []
    assert quarantine_row(server, body) is None


def test_a_notification_is_recorded_once_and_redeliveries_are_duplicates(server: Server) -> None:
    org = new_org()
    event_id = str(uuid4())
    body = notification(org, 7, 3, event_id=event_id)
    # First delivery: recorded, at a position the store holds.
    first = server.post(body)
    assert first.status_code == 200
    assert first.json() == {"status": "recorded", "position": first.json()["position"]}
    assert recorded_positions(server, org) == [first.json()["position"]]
    # The same bytes again, then the same notification in the envelope shape with new ref ids.
    assert server.post(body).json() == {"status": "duplicate"}
    redelivery = notification(org, 7, 3, event_id=event_id, envelope=True)
    assert server.post(redelivery).json() == {"status": "duplicate"}
    assert recorded_positions(server, org) == [first.json()["position"]]


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"\xff\xfe\x00garbage", b"", b'{"a": NaN}'],
    ids=["truncated", "not-utf8", "empty", "nan"],
)
def test_a_body_that_is_not_json_is_quarantined_with_its_bytes_and_answered_400(
    server: Server, raw: bytes
) -> None:
    body = raw + f" {uuid4()}".encode() if raw else raw
    answer = server.post(body)
    assert answer.status_code == 400
    receipt = answer.json()
    assert receipt["status"] == "quarantined"
    assert receipt["reason"] == "NOT_JSON"
    assert quarantine_row(server, body) == (receipt["id"], "NOT_JSON", body)


def _without_program(org: int) -> bytes:
    payload = json.loads(notification(org, 5, 5))
    del payload["data"]["partnerProgramId"]
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_without_program, "MISSING_FIELD"),
        (lambda org: notification(org, 5, 5, event="pointsIssued"), "UNKNOWN_EVENT"),
        (lambda org: json.dumps([org, "a list"]).encode(), "NOT_AN_OBJECT"),
        (lambda org: notification(org, 5, 5, scheduled="GJXKZF", event=REMINDER), "BAD_DATE"),
        (lambda org: notification(org, 5, 5, at_ms=3563), "BAD_TIMESTAMP"),
    ],
    ids=["missing-field", "unknown-event", "not-an-object", "bad-date", "bad-timestamp"],
)
def test_authentic_json_that_fails_validation_is_quarantined_and_answered_200(
    server: Server, make: Any, reason: str
) -> None:
    org = new_org()
    body = make(org)
    answer = server.post(body)
    # 200, so Capillary does not retry a payload that will never pass.
    assert answer.status_code == 200
    receipt = answer.json()
    assert receipt["status"] == "quarantined"
    assert receipt["reason"] == reason
    assert receipt["detail"]
    assert quarantine_row(server, body) == (receipt["id"], reason, body)
    assert recorded_positions(server, org) == []


REMINDER = "supplementaryMembershipExpiryReminder"


def test_a_body_over_the_size_limit_gets_413_and_nothing_is_stored(server: Server) -> None:
    marker = uuid4().hex
    oversized = json.dumps({"pad": marker + "x" * MIB}).encode()
    assert server.post(oversized).status_code == 413
    # Without a Content-Length (chunked), the limit still holds.
    chunks = iter([oversized[i : i + 65536] for i in range(0, len(oversized), 65536)])
    chunked = server.client.post(
        "/webhooks/capillary", content=chunks, headers={"X-Webhook-Token": WEBHOOK_SECRET}
    )
    assert chunked.status_code == 413
    assert server.sql("SELECT count(*) FROM ledger_quarantine WHERE length(raw) > %s", (MIB,)) == [
        (0,)
    ]
    # Exactly at the limit is accepted (and, not being a notification, quarantined).
    filler = "y" * (MIB - len(json.dumps({"pad": ""})))
    at_limit = json.dumps({"pad": filler}).encode()
    assert len(at_limit) == MIB
    answer = server.post(at_limit)
    assert answer.status_code == 200
    assert quarantine_row(server, at_limit) is not None


def test_concurrent_deliveries_of_one_notification_record_it_once(server: Server) -> None:
    org = new_org()
    event_id = str(uuid4())
    # Twenty deliveries at once, half flat, half in the envelope shape, across both workers.
    bodies = [notification(org, 9, 4, event_id=event_id, envelope=i % 2 == 1) for i in range(20)]
    start = threading.Barrier(len(bodies))

    def deliver(body: bytes) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            start.wait()
            return client.post(
                "/webhooks/capillary", content=body, headers={"X-Webhook-Token": WEBHOOK_SECRET}
            )

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(deliver, bodies))
    assert {answer.status_code for answer in answers} == {200}
    assert Counter(answer.json()["status"] for answer in answers) == {
        "recorded": 1,
        "duplicate": 19,
    }
    (recorded,) = [a.json()["position"] for a in answers if a.json()["status"] == "recorded"]
    assert recorded_positions(server, org) == [recorded]


# --- reading -----------------------------------------------------------------------------

READ_PATHS = ["/memberships/1/2/3", "/memberships/1/2/3/history", "/expiring", "/tiers"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {WEBHOOK_SECRET}"},
        {"Authorization": f"Basic {READ_TOKEN}"},
    ],
    ids=["missing", "wrong", "webhook-secret", "not-bearer"],
)
def test_reads_need_the_read_token(server: Server, headers: dict[str, str]) -> None:
    for path in READ_PATHS:
        answer = server.client.get(path, headers=headers)
        assert answer.status_code == 401, path
        assert answer.headers["WWW-Authenticate"] == "Bearer"


def cli_json(db_url: str, *args: str) -> str:
    """What the CLI prints for ``args`` with ``--json``."""
    result = subprocess.run(
        [str(CLI), "--db", db_url, *args, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def cli_lines(db_url: str, *args: str) -> list[Any]:
    """The CLI's JSON Lines for ``args``, one object a line."""
    return [json.loads(line) for line in cli_json(db_url, *args).splitlines()]


def _cli(db_url: str, *args: str) -> Any:
    if args[0] == "history":  # JSON Lines; the HTTP API answers the same objects as an array
        return cli_lines(db_url, *args)
    return json.loads(cli_json(db_url, *args))


def test_reads_answer_exactly_what_the_cli_prints(server: Server) -> None:
    org = new_org()
    # Two memberships: one linked then upgraded, one linked then reminded.
    bodies = [
        notification(org, 11, 5, details={"membershipExpiryDate": "2031-01-31"}),
        notification(
            org,
            11,
            5,
            event="partnerProgramUpdated",
            at_ms=1_700_000_100_000,
            update_type="UPGRADE",
            details={"partnerTierNumber": 3, "partnerTierExpiryDate": "2030-06-30"},
        ),
        notification(org, 12, 5, identifiers={"email": "someone@example.org"}),
        notification(org, 12, 5, event=REMINDER, at_ms=1_700_000_200_000, scheduled="2030-02-01"),
    ]
    last = max(server.post(body).json()["position"] for body in bodies)
    as_of = "2023-11-14T22:14:00Z"  # after the link, before the upgrade
    http = {
        "membership": server.get(f"/memberships/{org}/11/5", min_position=last),
        "as_of": server.get(f"/memberships/{org}/11/5", as_of=as_of),
        "as_known_at": server.get(f"/memberships/{org}/11/5", as_known_at="2001-01-01"),
        "history": server.get(f"/memberships/{org}/12/5/history"),
        "expiring": server.get("/expiring", org=org, min_position=last),
        "tiers": server.get("/tiers", org=org, min_position=last),
    }
    commands = {
        "membership": ["membership", str(org), "11", "5"],
        "as_of": ["membership", str(org), "11", "5", "--as-of", as_of],
        "history": ["history", str(org), "12", "5"],
        "expiring": ["expiring", "--org", str(org)],
        "tiers": ["tiers", "--org", str(org)],
    }
    with ThreadPoolExecutor(len(commands)) as pool:
        futures = {name: pool.submit(_cli, server.db_url, *args) for name, args in commands.items()}
        printed = {name: future.result() for name, future in futures.items()}
    for name, expected in printed.items():
        assert http[name].status_code == 200, name
        assert http[name].json() == expected, name
    # Sanity: these are the states the notifications describe.
    assert http["membership"].json()["tier_number"] == 3
    assert http["as_of"].json()["tier_number"] is None
    assert {row["kind"] for row in http["expiring"].json()} == {"membership", "tier", "scheduled"}
    # Nothing was recorded by 2001: not found, as the CLI says.
    assert http["as_known_at"].status_code == 404


def test_a_read_with_min_position_sees_the_write_that_returned_it(server: Server) -> None:
    org = new_org()
    for customer in range(1, 13):
        position = server.post(notification(org, customer, 8)).json()["position"]
        started = time.monotonic()
        answer = server.get(f"/memberships/{org}/{customer}/8", min_position=position)
        assert answer.status_code == 200
        assert answer.json()["status"] == "LINKED"
        assert time.monotonic() - started < 2.0
    # A position no POST ever returned is refused rather than waited for.
    head = server.sql("SELECT max(notification_id) FROM partnerledger_events")[0][0]
    assert server.get("/tiers", min_position=head + 1000).status_code == 400


def test_expiring_pages_follow_the_cursor_through_every_row(server: Server) -> None:
    org = new_org()
    for customer in range(1, 6):
        details = {"membershipExpiryDate": f"2032-0{customer}-15"}
        last = server.post(notification(org, customer, 6, details=details)).json()["position"]
    everything = server.get("/expiring", org=org, min_position=last).json()
    assert len(everything) == 5
    pages: list[list[dict[str, Any]]] = []
    answer = server.get("/expiring", org=org, limit=2)
    while True:
        pages.append(answer.json())
        if "next" not in answer.links:
            break
        assert answer.headers["X-Next-Cursor"]
        answer = server.client.get(
            answer.links["next"]["url"], headers={"Authorization": f"Bearer {READ_TOKEN}"}
        )
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [row for page in pages for row in page] == everything
    # A cursor this service did not give out is refused, whatever it holds.
    forged = base64.urlsafe_b64encode(json.dumps(["x", 1, 2, 3, "tier"]).encode()).decode()
    for cursor in ("not-base64!", forged):
        assert server.get("/expiring", org=org, cursor=cursor).status_code == 400


def test_unknown_memberships_are_404(server: Server) -> None:
    org = new_org()
    assert server.get(f"/memberships/{org}/1/1").status_code == 404
    assert server.get(f"/memberships/{org}/1/1/history").status_code == 404


# --- operating ---------------------------------------------------------------------------


def test_metrics_count_outcomes_and_show_view_lag_and_quarantine_size(server: Server) -> None:
    org = new_org()
    before = metric_samples(server)
    body = notification(org, 1, 2)
    server.post(body)  # recorded
    server.post(body)  # duplicate
    server.post(_without_program(org))  # quarantined
    server.post(body, headers={"X-Webhook-Token": "wrong"})  # unauthorized
    after = metric_samples(server)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    total = "partner_ledger_notifications_total"
    for outcome in ("recorded", "duplicate", "quarantined", "unauthorized"):
        assert delta(total, outcome=outcome) == 1, outcome
    assert delta("partner_ledger_quarantined_notifications_total", reason="MISSING_FIELD") == 1
    assert delta("partner_ledger_ingest_seconds_count") == 3
    assert delta("partner_ledger_commit_group_size_sum") == 3
    # The store's gauges, read at scrape time.
    assert after[("partner_ledger_database_up", ())] == 1
    open_entries = server.sql("SELECT count(*) FROM ledger_quarantine WHERE resolved_at_us IS NULL")
    assert after[("partner_ledger_quarantine_open", ())] == open_entries[0][0]
    for view in ("memberships", "expiry"):
        assert (("partner_ledger_view_lag_events", (("view", view),))) in after
        assert after[("partner_ledger_view_position", (("view", view),))] >= 0


def test_the_openapi_document_carries_every_payload_shape_as_a_working_example(
    server: Server,
) -> None:
    document = server.client.get("/openapi.json").json()
    operation = document["paths"]["/webhooks/capillary"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    shapes = {name.split("_")[0] for name in examples}
    assert shapes == {"A", "B", "C"}
    assert "attributes" in examples["A_envelope_linked"]["value"]
    assert "eventSearchKey" in examples["C_search_key_reminder"]["value"]
    # Each example is a real notification: it is recorded (or already was), never quarantined.
    for name, example in examples.items():
        answer = server.post(json.dumps(example["value"]).encode())
        assert answer.json()["status"] in ("recorded", "duplicate"), name
    # The answers are documented too, with examples and Retry-After on 429 (the default).
    assert set(operation["responses"]["200"]["content"]["application/json"]["examples"]) == {
        "recorded",
        "duplicate",
        "quarantined",
    }
    assert "Retry-After" in operation["responses"]["429"]["headers"]
    schemes = document["components"]["securitySchemes"]
    assert schemes["WebhookToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Webhook-Token",
        "description": schemes["WebhookToken"]["description"],
    }
    assert schemes["ReadToken"]["scheme"] == "bearer"


def test_schemathesis_finds_no_server_error_on_bad_input(server: Server, tmp_path: Path) -> None:
    quarantined_before = server.sql("SELECT count(*) FROM ledger_quarantine")[0][0]
    result = subprocess.run(
        [
            str(ST),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"X-Webhook-Token: {WEBHOOK_SECRET}",
            "--header",
            f"Authorization: Bearer {READ_TOKEN}",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "15",
            "--seed",
            "20261130",
            "--workers",
            "1",
            "--request-timeout",
            "20",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
    # The generated bodies reached the store: every one of them was accounted for.
    assert server.sql("SELECT count(*) FROM ledger_quarantine")[0][0] > quarantined_before


def test_logs_hold_no_secret_and_no_customer_identifier(server: Server) -> None:
    org = new_org()
    customer = _random.randrange(10**9, 10**10)
    identifiers = {"email": f"person{customer}@example.org", "mobile": f"65{customer}"}
    body = notification(org, customer, 2, identifiers=identifiers)
    server.post(body)
    server.post(body, headers={"X-Webhook-Token": "almost-the-secret"})
    server.get(f"/memberships/{org}/{customer}/2")
    server.get(f"/memberships/{org}/{customer}/2/history")
    log = server.log()
    for secret in (WEBHOOK_SECRET, READ_TOKEN, "almost-the-secret"):
        assert secret not in log
    for identifier in (str(customer), *identifiers.values()):
        assert identifier not in log
    # The access log is there, by route template.
    assert "GET /memberships/{org}/{customer}/{program}/history 200" in log


# --- servers of their own ----------------------------------------------------------------


def _signed(
    key: bytes, body: bytes, *, at: int | None = None, message_id: str = ""
) -> dict[str, str]:
    """Standard Webhooks headers, computed here from the spec (not by the code under test)."""
    message_id = message_id or f"msg_{uuid4().hex}"
    stamp = str(int(time.time()) if at is None else at)
    content = f"{message_id}.{stamp}.".encode() + body
    digest = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,{digest}",
    }


def test_signatures_are_required_when_configured_and_rotated_secrets_both_work(
    postgres_url: str, tmp_path: Path
) -> None:
    key, other = os.urandom(32), os.urandom(32)
    signing_secret = "whsec_" + base64.b64encode(key).decode()
    flags = ("--webhook-secrets", "old-secret,new-secret", "--signing-secret", signing_secret)
    with running_server(postgres_url, tmp_path, *flags) as server:
        org = new_org()

        def deliver(body: bytes, token: str, headers: dict[str, str]) -> int:
            return server.post(body, headers={"X-Webhook-Token": token} | headers).status_code

        # Both secrets of a rotation are accepted, with a valid signature.
        accepted = [notification(org, 1, 1), notification(org, 2, 1)]
        assert deliver(accepted[0], "old-secret", _signed(key, accepted[0])) == 200
        assert deliver(accepted[1], "new-secret", _signed(key, accepted[1])) == 200
        # A list of signatures passes when one of them matches (the sender rotating its key).
        rotating = notification(org, 3, 1)
        wrong, right = _signed(other, rotating), _signed(key, rotating, message_id="msg_r")
        both = right | {
            "webhook-signature": f"{wrong['webhook-signature']} {right['webhook-signature']}"
        }
        assert deliver(rotating, "new-secret", both) == 200
        # Refused, and nothing stored: the flag replaced the environment's secret; no
        # signature; the wrong key; a body that is not the one signed; a stale timestamp.
        refused = [notification(org, 10 + i, 1) for i in range(5)]
        assert deliver(refused[0], WEBHOOK_SECRET, _signed(key, refused[0])) == 401
        assert deliver(refused[1], "new-secret", {}) == 401
        assert deliver(refused[2], "new-secret", _signed(other, refused[2])) == 401
        assert deliver(refused[3], "new-secret", _signed(key, refused[3] + b" ")) == 401
        stale = _signed(key, refused[4], at=int(time.time()) - 301)
        assert deliver(refused[4], "new-secret", stale) == 401
        assert len(recorded_positions(server, org)) == 3
        assert all(quarantine_row(server, body) is None for body in refused)


def test_shutdown_finishes_in_flight_requests_and_answers_new_ones_429(
    postgres_url: str, tmp_path: Path
) -> None:
    with running_server(postgres_url, tmp_path, "--drain-seconds", "2") as server:
        org = new_org()
        in_flight_body, late_body = notification(org, 1, 1), notification(org, 2, 1)
        # Hold the inbox so the first delivery's commit waits.
        blocker = psycopg.connect(postgres_url)
        blocker.execute("LOCK TABLE ledger_inbox IN ACCESS EXCLUSIVE MODE")
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(
                httpx.post,
                f"{server.url}/webhooks/capillary",
                content=in_flight_body,
                headers={"X-Webhook-Token": WEBHOOK_SECRET},
                timeout=30,
            )
            _wait_for_a_lock_wait(postgres_url)
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            time.sleep(0.3)
            # Draining: new deliveries are refused with Retry-After, readiness is off.
            late = httpx.post(
                f"{server.url}/webhooks/capillary",
                content=late_body,
                headers={"X-Webhook-Token": WEBHOOK_SECRET},
            )
            assert late.status_code == 429
            assert late.headers["Retry-After"].isdigit()
            assert httpx.get(f"{server.url}/readyz").status_code == 503
            # After the drain period the listener closes while the first request still waits.
            time.sleep(max(0.0, signalled + 2.8 - time.monotonic()))
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{server.url}/healthz", timeout=2)
            assert not in_flight.done()
            blocker.rollback()
            answer = in_flight.result(timeout=30)
        blocker.close()
        assert answer.status_code == 200
        assert answer.json()["status"] == "recorded"
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
        # The in-flight notification is in the store; the refused one is not.
        assert recorded_positions(server, org) == [answer.json()["position"]]
        assert quarantine_row(server, late_body) is None


def _wait_for_a_lock_wait(db_url: str, *, timeout: float = 15) -> None:
    name = db_url.rsplit("/", 1)[1]
    deadline = time.monotonic() + timeout
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        while time.monotonic() < deadline:
            waiting = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = "
                "'Lock'",
                (name,),
            ).fetchone()
            if waiting and waiting[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the delivery never reached the database")


@pytest.mark.slow
def test_a_database_outage_gives_429s_then_recovery_with_every_200_in_the_store(
    postgres_url: str, tmp_path: Path
) -> None:
    payloads = generated(3000, seed=23)
    answers: list[tuple[bytes, int, dict[str, Any], str | None, float]] = []
    stop = threading.Event()
    lock = threading.Lock()
    cursor = iter(range(10**9))

    with running_server(
        postgres_url, tmp_path, PARTNER_LEDGER_COMMIT_TIMEOUT_SECONDS="2"
    ) as server:

        def load() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                while not stop.is_set():
                    with lock:
                        body = payloads[next(cursor) % len(payloads)]
                    answer = client.post(
                        "/webhooks/capillary",
                        content=body,
                        headers={"X-Webhook-Token": WEBHOOK_SECRET},
                    )
                    with lock:
                        answers.append(
                            (
                                body,
                                answer.status_code,
                                answer.json(),
                                answer.headers.get("Retry-After"),
                                time.monotonic(),
                            )
                        )

        with ThreadPoolExecutor(6) as pool:
            workers = [pool.submit(load) for _ in range(6)]
            # The outage starts once deliveries are being acknowledged (a second of load on a
            # busy machine may not have brought one 200 yet); at most 30 s.
            warm = time.monotonic() + 30
            while time.monotonic() < warm:
                with lock:
                    if sum(1 for a in answers if a[1] == 200) >= 20:
                        break
                time.sleep(0.1)
            # The outage: the database refuses connections and its sessions are cut, for longer
            # than a delivery waits for its commit (else the library's retries ride it out).
            outage_started = time.monotonic()
            with _database_refusing_connections(postgres_url):
                time.sleep(4.0)
            outage_ended = time.monotonic()
            # Load goes on until deliveries succeed again for a while.
            deadline = outage_ended + 45
            while time.monotonic() < deadline:
                recovered = [a for a in answers if a[4] > outage_ended and a[1] == 200]
                if len(recovered) >= 50:
                    break
                time.sleep(0.2)
            stop.set()
            for worker in workers:
                worker.result()
        # Capillary retries every 429 until it is answered; so do we.
        for body in {a[0] for a in answers if a[1] == 429}:
            for _ in range(20):
                answer = server.client.post(
                    "/webhooks/capillary",
                    content=body,
                    headers={"X-Webhook-Token": WEBHOOK_SECRET},
                )
                if answer.status_code != 429:
                    answers.append(
                        (body, answer.status_code, answer.json(), None, time.monotonic())
                    )
                    break
                time.sleep(0.5)

        statuses = Counter(a[1] for a in answers)
        assert set(statuses) <= {200, 400, 429}
        unavailable = [a for a in answers if a[1] == 429]
        assert unavailable and all(a[3] and a[3].isdigit() for a in unavailable)
        assert all(a[4] >= outage_started for a in unavailable)
        assert any(a[1] == 200 and a[4] < outage_started for a in answers)
        assert len([a for a in answers if a[1] == 200 and a[4] > outage_ended]) >= 50
        _assert_every_answer_is_in_the_store(server, answers)


def _assert_every_answer_is_in_the_store(
    server: Server, answers: list[tuple[bytes, int, dict[str, Any], str | None, float]]
) -> None:
    inbox = dict(
        server.sql(
            "SELECT e.notification_id, i.fingerprint FROM partnerledger_events e "
            "JOIN ledger_inbox i USING (originator_id, originator_version)"
        )
    )
    # Nothing half-written: every event has its inbox row and every inbox row its event.
    events = server.sql("SELECT count(*) FROM partnerledger_events")[0][0]
    assert server.sql("SELECT count(*) FROM ledger_inbox")[0][0] == events == len(inbox)
    quarantined = {row[0] for row in server.sql("SELECT id FROM ledger_quarantine")}
    fingerprints = set(inbox.values())
    positions: list[int] = []
    accepted: set[str] = set()
    for body, status, receipt, _, _ in answers:
        if status == 429:
            continue
        if receipt["status"] == "recorded":
            positions.append(receipt["position"])
            assert inbox[receipt["position"]] == parse_notification(body).fingerprint
        if receipt["status"] in ("recorded", "duplicate"):
            accepted.add(parse_notification(body).fingerprint)
        else:
            assert receipt["id"] in quarantined
    # Each recorded answer names its own event; the store holds exactly what was accepted.
    assert len(positions) == len(set(positions))
    assert fingerprints == accepted
    # The views equal a fresh rebuild, and every hash chain verifies.
    for report in _cli(server.db_url, "rebuild", "--diff"):
        assert (report["changed"], report["added"], report["removed"]) == (0, 0, 0)
    assert _cli(server.db_url, "verify")["ok"] is True


class _database_refusing_connections:
    """An outage of one database only (the server is shared): refuse new connections and
    cut the existing ones, then allow connections again."""

    def __init__(self, db_url: str) -> None:
        self.name = db_url.rsplit("/", 1)[1]

    def __enter__(self) -> None:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (self.name,),
            )

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')
