"""Soak: steady webhook load with database outages and killed servers, then the accounting.

    .venv/bin/python scripts/soak.py --minutes 10 [--senders 16] [--json OUT]

Starts ``partner-ledger serve --workers 2`` on a scratch PostgreSQL database and keeps senders
posting generated notifications (with redeliveries) the whole time, re-sending every payload
that got no final answer (503, 5xx, connection error), as Capillary would. Every
``--outage-every`` seconds the database is taken away for ``--outage-seconds`` (its sessions
terminated and new ones refused: the server stays up, the database does not), or with
``--restart-postgres`` the whole PostgreSQL server is restarted; every
``--kill-every`` seconds the server is killed with SIGKILL and started again.

At the end: every payload got a final answer; every "recorded" answer's position holds exactly
that notification's event; the store holds exactly the notifications answered "recorded"; the
views equal a fresh rebuild; every hash chain verifies. Prints the figures and exits 1 if any
check fails. Not a test: it runs as long as you ask.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domain.audit import Auditor  # noqa: E402
from domain.notifications import parse_notification  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402
from infrastructure.wiring import open_ledger  # noqa: E402
from projections.runner import Projector  # noqa: E402
from projections.views import VIEWS  # noqa: E402

CLI = Path(sys.executable).parent / "partner-ledger"
SECRET = "soak-secret-5b1e"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--outage-every", type=float, default=60)
    parser.add_argument("--outage-seconds", type=float, default=5)
    parser.add_argument("--kill-every", type=float, default=90)
    parser.add_argument(
        "--restart-postgres",
        action="store_true",
        help="restart the whole PostgreSQL server for each outage (pg_ctlcluster; only on a "
        "machine where nobody else uses it) instead of taking the scratch database away",
    )
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", type=Path, metavar="OUT")
    args = parser.parse_args()
    name = f"pl_soak_{os.getpid()}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{args.admin_url.rsplit('/', 1)[0]}/{name}"
    try:
        report = Soak(url, args).run()
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["ok"] else 1


class Soak:
    def __init__(self, db_url: str, args: argparse.Namespace) -> None:
        self.db_url = db_url
        self.args = args
        self.port = 18000 + os.getpid() % 1000
        self.server: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()
        self.answers: dict[int, dict[str, Any]] = {}
        self.codes: Counter[str] = Counter()
        self.events: Counter[str] = Counter()

    def run(self) -> dict[str, Any]:
        payloads = _payloads(self.args.minutes)
        work: queue.Queue[int] = queue.Queue()
        for index in range(len(payloads)):
            work.put(index)
        self.start_server()
        stop = threading.Event()
        senders = [
            threading.Thread(target=self.send, args=(payloads, work, stop))
            for _ in range(self.args.senders)
        ]
        for sender in senders:
            sender.start()
        started = time.monotonic()
        deadline = started + self.args.minutes * 60
        next_outage = started + self.args.outage_every
        next_kill = started + self.args.kill_every
        while time.monotonic() < deadline and (not work.empty() or self.pending()):
            now = time.monotonic()
            if now >= next_outage:
                self.outage()
                next_outage = now + self.args.outage_every
            if now >= next_kill:
                self.restart_server()
                next_kill = now + self.args.kill_every
            time.sleep(0.2)
        # Load phase over: let the senders finish what is queued, with the database back.
        while not work.empty() or self.pending():
            time.sleep(0.2)
        stop.set()
        for sender in senders:
            sender.join()
        self.stop_server()
        return self.account(payloads, time.monotonic() - started)

    # --- load ----------------------------------------------------------------------------

    def pending(self) -> bool:
        return bool(self.events["in_flight"])

    def send(self, payloads: list[bytes], work: queue.Queue[int], stop: threading.Event) -> None:
        client = httpx.Client(timeout=15)
        while not stop.is_set():
            try:
                index = work.get(timeout=0.2)
            except queue.Empty:
                continue
            with self.lock:
                self.events["in_flight"] += 1
            try:
                answer = client.post(
                    f"http://127.0.0.1:{self.port}/webhooks/capillary",
                    content=payloads[index],
                    headers={"X-Webhook-Token": SECRET, "Content-Type": "application/json"},
                )
                code = str(answer.status_code)
                final = answer.status_code in (200, 400)
                body = answer.json() if final else None
            except httpx.HTTPError as error:
                code, final, body = type(error).__name__, False, None
            with self.lock:
                self.codes[code] += 1
                self.events["in_flight"] -= 1
                if final:
                    self.answers[index] = body
            if not final:
                time.sleep(0.2)
                work.put(index)  # as Capillary: retried until answered

    # --- faults --------------------------------------------------------------------------

    def outage(self) -> None:
        if self.args.restart_postgres:
            version = os.listdir("/etc/postgresql")[0]
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                check=True,
            )
            self.events["database_outages"] += 1
            return
        name = self.db_url.rsplit("/", 1)[1]
        admin = self.args.admin_url
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        time.sleep(self.args.outage_seconds)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        self.events["database_outages"] += 1

    def start_server(self) -> None:
        env = dict(
            os.environ, PARTNER_LEDGER_WEBHOOK_SECRETS=SECRET, PARTNER_LEDGER_READ_TOKEN="soak-read"
        )
        self.server = subprocess.Popen(
            [str(CLI), "--db", self.db_url, "serve", "--port", str(self.port), "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def restart_server(self) -> None:
        assert self.server is not None
        os.killpg(self.server.pid, signal.SIGKILL)  # the server and its worker processes
        self.server.wait()
        self.events["server_kills"] += 1
        self.start_server()

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.send_signal(signal.SIGTERM)
            self.server.wait(timeout=60)

    # --- accounting ----------------------------------------------------------------------

    def account(self, payloads: list[bytes], seconds: float) -> dict[str, Any]:
        statuses = Counter(body["status"] for body in self.answers.values())
        checks: dict[str, bool] = {"every payload answered": len(self.answers) == len(payloads)}
        accepted = {
            parse_notification(payloads[index]).fingerprint
            for index, body in self.answers.items()
            if body["status"] in ("recorded", "duplicate")
        }
        quarantined = {
            body["id"] for body in self.answers.values() if body["status"] == "quarantined"
        }
        with open_ledger(Settings(db=self.db_url)) as ledger:
            store: Any = ledger.store
            fingerprints = {
                r["fingerprint"] for r in store.query("SELECT fingerprint FROM ledger_inbox")
            }
            # Nothing lost (every 200 is stored), nothing extra, nothing twice.
            checks["store holds exactly the accepted notifications"] = fingerprints == accepted
            entries = {r["id"] for r in store.quarantined(include_resolved=True)}
            checks["every quarantined answer is in the quarantine"] = quarantined <= entries
            positions = {b["position"] for b in self.answers.values() if b["status"] == "recorded"}
            found = {
                r["p"]
                for r in store.query(
                    f"SELECT {store.position_column} AS p FROM {store.events_table}"
                )
            }
            checks["every recorded position is in the store"] = positions <= found
            projector = Projector(ledger)
            projector.catch_up()
            checks["views equal a fresh rebuild"] = all(
                (r["changed"], r["added"], r["removed"]) == (0, 0, 0)
                for r in (projector.rebuild(view, diff_only=True) for view in VIEWS.values())
            )
            checks["every hash chain verifies"] = Auditor(ledger.store).verify() == []
        return {
            "ok": all(checks.values()),
            "seconds": round(seconds, 1),
            "payloads": len(payloads),
            "answers": dict(statuses),
            "notifications_stored": len(accepted),
            "http_codes_and_errors": dict(self.codes),
            "database_outages": self.events["database_outages"],
            "server_kills": self.events["server_kills"],
            "checks": checks,
        }


def _payloads(minutes: float) -> list[bytes]:
    """Enough generated notifications (with redeliveries and malformed ones) for the run."""
    count = int(minutes * 60 * 120)
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/generate_notifications.py"),
            "--count",
            str(count),
            "--seed",
            "99",
        ],
        check=True,
        capture_output=True,
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


if __name__ == "__main__":
    raise SystemExit(main())
