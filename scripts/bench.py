"""Benchmarks on PostgreSQL, each beside a raw baseline measured in the same run.

    .venv/bin/python scripts/bench.py [--scale small|full] [--json OUT] [--admin-url URL]
        [--only ingest,rebuild,freshness,queries,dashboard,webhook,cli]
        [--webhook-load SENDERS,REQUESTS]

Creates scratch databases, runs, prints one table (figure, ours, baseline, ratio, target, met?),
writes the same as JSON with --json, and drops the databases. ``--only`` runs some figure groups
(rebuild, freshness and queries still ingest the generated file first, without reporting it).
Nothing here is a test: it asserts nothing about speed.

Figures:
1. ingest: ``partner-ledger ingest`` of a generated file, notifications/s end to end, client
   and server CPU per notification, and peak RSS; baselines: the eventsourcing peer
   (``scripts/bench_peer.py``: a plain Application saving as many events of the same mean size,
   500 aggregates per save, same library and server, same run), and COPY of our stored-event
   rows into a bare table (the raw limit).
2. rebuild: rebuilding the memberships view from the log, events/s; baseline: a raw SELECT of the
   notification log with decoding of every event.
3. freshness: with ``project --follow`` running, commit-to-visible latency in the memberships
   view; baseline: a bare LISTEN/NOTIFY round trip on the same server.
4. queries: membership lookup, a 100-row ``expiring`` page, and the period history (the
   memberships of an org changed in a window of recording time, as ``history --org --from
   --to`` asks the inbox's indexes), p50/p99.
5. webhook: ``partner-ledger serve`` under ``scripts/bench_load.py`` (a separate process) on
   loopback, acknowledged (2xx, committed) deliveries/s and p50/p99 latency; baseline:
   ``scripts/bench_crud.py``, a FastAPI/uvicorn receiver upserting one row per request, under the
   same load with the same payloads. Each with ``--workers`` 1 and 2, the better one reported.
   ``--webhook-load 64,10000`` sets the concurrent senders and requests (default: the scale's).
6. dashboard: each dashboard page's p99 (signed in, one ``serve`` worker) beside the p99 of the
   API endpoint that answers the same question, requests interleaved page/API in the same run.
7. cli: ``partner-ledger --help``, median wall time of a few runs; baseline: ``python -c pass``
   (interpreter start-up), so the ratio is what the command line adds to starting Python.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scratch import scratch_database  # noqa: E402  (scripts/, beside this one)

from domain.history import Chronicle  # noqa: E402
from domain.ledger import Ledger  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402
from infrastructure.views.queries import Queries  # noqa: E402
from infrastructure.wiring import open_ledger  # noqa: E402
from projections.runner import Projector  # noqa: E402
from projections.views import MEMBERSHIPS  # noqa: E402

CLI = Path(sys.executable).parent / "partner-ledger"
SCALES = {
    "small": {"notifications": 20_000, "freshness": 200, "queries": 2_000, "dashboard": 150},
    "full": {"notifications": 1_000_000, "freshness": 1_000, "queries": 10_000, "dashboard": 300},
}
WEBHOOK_LOAD = {  # concurrency, requests, time bound in seconds
    "small": (16, 3_000, 120),
    "full": (64, 50_000, 180),
}
GROUPS = ("ingest", "rebuild", "freshness", "queries", "dashboard", "webhook", "cli")
HELP_RUNS = 7
SECRET = "bench-webhook-secret-7c41"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=list(SCALES), default="small")
    parser.add_argument("--json", type=Path, metavar="OUT")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--only", metavar="NAME[,NAME]", help=f"some of {','.join(GROUPS)}")
    parser.add_argument(
        "--webhook-load",
        type=_load,
        metavar="SENDERS,REQUESTS",
        help="the webhook figure's concurrent senders and requests (default: the scale's)",
    )
    args = parser.parse_args()
    groups = set(args.only.split(",")) if args.only else set(GROUPS)
    if groups - set(GROUPS):
        parser.error(f"--only: unknown {','.join(sorted(groups - set(GROUPS)))}")
    rows: list[dict[str, Any]] = []
    if groups - {"webhook", "cli"}:
        with scratch_database(args.admin_url, "bench") as url:
            rows += run(url, SCALES[args.scale], groups)
    if "webhook" in groups:
        concurrency, requests, seconds = WEBHOOK_LOAD[args.scale]
        if args.webhook_load is not None:
            concurrency, requests = args.webhook_load
            seconds = max(seconds, requests / 50)  # at 50/s at worst, every request is sent
        rows += bench_webhook(args.admin_url, (concurrency, requests, seconds))
    if "cli" in groups:
        rows += bench_cli_help()
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"scale": args.scale, "figures": rows}, indent=2) + "\n")
    return 0


def _load(text: str) -> tuple[int, int]:
    senders, _, requests = text.partition(",")
    try:
        pair = int(senders), int(requests)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not SENDERS,REQUESTS") from None
    if min(pair) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: both must be at least 1")
    return pair


def generate(path: Path, count: int, seed: int) -> None:
    script = str(ROOT / "scripts/generate_notifications.py")
    command = [sys.executable, script, "--count", str(count), "--seed", str(seed)]
    subprocess.run([*command, "--out", str(path)], check=True)


def run(url: str, scale: dict[str, int], groups: set[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        stream = Path(scratch) / "stream.jsonl"
        generate(stream, scale["notifications"], seed=7)
        if "ingest" in groups:
            rows += bench_ingest(url, stream, scale["notifications"])
        else:  # the other groups read what it writes
            ingest = [str(CLI), "--db", url, "ingest", str(stream)]
            subprocess.run(ingest, check=True, stdout=subprocess.DEVNULL)
    with open_ledger(Settings(db=url)) as ledger:
        rows += bench_rebuild(ledger) if "rebuild" in groups else []
        if "freshness" in groups:
            rows += bench_freshness(url, ledger, scale["freshness"])
        rows += bench_queries(ledger, scale["queries"]) if "queries" in groups else []
    if "dashboard" in groups:
        rows += bench_dashboard(url, scale["dashboard"])
    return rows


def bench_ingest(url: str, stream: Path, count: int) -> list[dict[str, Any]]:
    """Our ingest end to end, then the eventsourcing peer saving as many events of the same
    mean size (`scripts/bench_peer.py`, 500 aggregates per save, its own scratch database on
    the same server), then the raw COPY of our stored events. Client CPU is each process's
    own (with its parsing workers); server CPU is PostgreSQL's, measured around each."""
    cpu_children = _children_cpu_seconds()
    server = postgres_cpu_seconds()
    started = time.perf_counter()
    done = subprocess.run(
        [str(CLI), "--db", url, "ingest", str(stream), "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    server = postgres_cpu_seconds() - server
    client = _children_cpu_seconds() - cpu_children
    summary = json.loads(done.stdout)
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    ours = count / seconds
    events, state_bytes = stored_event_sizes(url)
    peer = run_peer(url, events, state_bytes)
    peer_rate = peer["events"] / peer["seconds"]
    raw = raw_copy_rate(url)
    per_notification = 1e6 / max(count, 1)
    per_peer_event = 1e6 / max(peer["events"], 1)
    return [
        figure(
            "ingest notifications/s vs the eventsourcing peer",
            ours,
            peer_rate,
            ">= 1.5x the peer (aim 2x)",
            ours >= 1.5 * peer_rate,
            unit="/s",
        ),
        figure(
            "ingest notifications/s (end to end, with views) vs raw COPY",
            ours,
            raw,
            ">= 0.25x raw COPY",
            ours >= 0.25 * raw,
            unit="/s",
        ),
        figure(
            "ingest client CPU us per notification (peer: per event)",
            client * per_notification,
            peer["client_cpu_seconds"] * per_peer_event,
            "-",
            True,
            unit="us",
        ),
        figure(
            "ingest server CPU us per notification (peer: per event)",
            server * per_notification,
            peer["server_cpu_seconds"] * per_peer_event,
            "-",
            True,
            unit="us",
        ),
        figure("ingest peak RSS MB", rss_mb, None, "< 300 MB", rss_mb < 300, unit="MB"),
        figure(
            "ingest accounting (received = sum)",
            summary["received"],
            None,
            "every payload accounted for",
            summary["received"]
            == summary["recorded"] + summary["duplicates"] + summary["quarantined"],
        ),
    ]


def stored_event_sizes(url: str) -> tuple[int, int]:
    """How many events the ingest stored, and their mean stored state size in bytes."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(avg(length(state)), 0) FROM partnerledger_events"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def run_peer(url: str, events: int, state_bytes: int) -> dict[str, Any]:
    """`scripts/bench_peer.py` on a scratch database of the same server as ``url``."""
    admin = f"{url.rsplit('/', 1)[0]}/postgres"
    with scratch_database(admin, "peer") as peer_url:
        server = postgres_cpu_seconds()
        command = [sys.executable, str(ROOT / "scripts/bench_peer.py"), "--db", peer_url]
        done = subprocess.run(
            [*command, "--events", str(events), "--state-bytes", str(state_bytes)],
            check=True,
            capture_output=True,
            text=True,
        )
        server = postgres_cpu_seconds() - server
    result: dict[str, Any] = json.loads(done.stdout)
    result["server_cpu_seconds"] = round(server, 3)
    print(f"eventsourcing peer: {json.dumps(result)}", file=sys.stderr)
    return result


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def postgres_cpu_seconds() -> float:
    """User + system CPU seconds of the local PostgreSQL server so far: its live processes,
    plus what its exited backends used (counted in the postmaster's children times). Reads
    /proc, so the server must run on this machine (it does here: loopback only)."""
    ticks = 0
    processes: dict[int, tuple[int, list[str]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        if name.startswith("postgres"):
            fields = text.rpartition(")")[2].split()
            processes[int(stat.parent.name)] = (int(fields[1]), fields)
    for parent, fields in processes.values():
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
        if parent not in processes:  # the postmaster: add its reaped children
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def raw_copy_rate(url: str) -> float:
    """COPY the stored events themselves (same rows, same sizes) into a bare table: the rows
    are first copied out to a scratch file in PostgreSQL's binary format, then the timed part
    streams that file back in 1 MB blocks (memory stays flat at any scale)."""
    columns = "originator_id, originator_version, topic, state"
    with tempfile.TemporaryFile() as scratch, psycopg.connect(url, autocommit=True) as conn:
        with conn.cursor() as cursor:
            query = f"COPY (SELECT {columns} FROM partnerledger_events) TO STDOUT (FORMAT binary)"
            with cursor.copy(query) as copy:
                for block in copy:
                    scratch.write(block)
            count = cursor.rowcount
        scratch.seek(0)
        conn.execute(
            "CREATE TABLE bench_raw (originator_id uuid, originator_version bigint, "
            "topic text, state bytea)"
        )
        started = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cursor,
            cursor.copy("COPY bench_raw FROM STDIN (FORMAT binary)") as copy,
        ):
            while block := scratch.read(1 << 20):
                copy.write(block)
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE bench_raw")
    return count / seconds


def bench_rebuild(ledger: Ledger) -> list[dict[str, Any]]:
    """Rebuild the memberships view alone, then every view in one pass (what a first catch-up
    does, as after an ingest into a new database), each against a raw read+decode of the log
    measured right after it."""
    from projections.views import VIEWS

    projector = Projector(ledger)
    report = projector.rebuild(MEMBERSHIPS)
    ours = report["events"] / report["seconds"]
    raw = raw_read_and_decode_rate(ledger)
    reports = projector.rebuild_views(list(VIEWS.values()))
    every = min(r["events"] / r["seconds"] for r in reports.values())
    raw_every = raw_read_and_decode_rate(ledger)
    return [
        figure(
            "rebuild memberships events/s",
            ours,
            raw,
            ">= 0.5x raw read+decode",
            ours >= 0.5 * raw,
            unit="/s",
        ),
        figure(
            f"rebuild all {len(VIEWS)} views in one pass events/s",
            every,
            raw_every,
            "-",
            True,
            unit="/s",
        ),
    ]


def raw_read_and_decode_rate(ledger: Ledger) -> float:
    """The baseline of a rebuild: the notification log read in pages, every event decoded."""
    started = time.perf_counter()
    decoded = 0
    position = 0
    while True:
        batch = ledger.recorder.select_notifications(position, 5000, inclusive_of_start=False)
        if not batch:
            break
        for notification in batch:
            ledger.mapper.to_domain_event(notification)
            decoded += 1
        position = batch[-1].id
    return decoded / (time.perf_counter() - started)


def bench_freshness(url: str, ledger: Ledger, samples: int) -> list[dict[str, Any]]:
    follower = subprocess.Popen(
        [str(CLI), "--db", url, "project", "--follow"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert follower.stderr is not None
    follower.stderr.readline()  # "following the log": signal handlers are in place
    queries = Queries(Projector(ledger).store)
    latencies: list[float] = []
    try:
        for number in range(samples):
            ledger.receive([notification(customer=900_000_000 + number)])
            started = time.perf_counter()  # the write has committed: now wait for the view
            while queries.membership(50191, 900_000_000 + number, 25) is None:
                time.sleep(0.0005)
            latencies.append(time.perf_counter() - started)
    finally:
        follower.terminate()
        follower.wait(timeout=30)
    raw = notify_round_trips(url, samples)
    p50, p99 = percentiles(latencies)
    raw50, raw99 = percentiles(raw)
    return [
        figure("freshness commit->visible p50 ms", p50 * 1e3, raw50 * 1e3, "-", True, unit="ms"),
        figure(
            "freshness commit->visible p99 ms",
            p99 * 1e3,
            raw99 * 1e3,
            "< 50 ms",
            p99 < 0.050,
            unit="ms",
        ),
    ]


def notify_round_trips(url: str, samples: int) -> list[float]:
    with (
        psycopg.connect(url, autocommit=True) as listener,
        psycopg.connect(url, autocommit=True) as sender,
    ):
        listener.execute("LISTEN bench")
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            sender.execute("NOTIFY bench")
            next(listener.notifies(timeout=5, stop_after=1))
            times.append(time.perf_counter() - started)
    return times


def bench_queries(ledger: Ledger, samples: int) -> list[dict[str, Any]]:
    projector = Projector(ledger)
    projector.catch_up()
    queries = Queries(projector.store)
    keys = [
        (r["org_id"], r["customer_id"], r["partner_program_id"])
        for r in list(queries.memberships())[:samples]
    ]
    lookup = timed(lambda key: queries.membership(*key), keys)
    pages = timed(lambda _: queries.expiring(limit=100), range(min(samples, 2000)))
    chronicle = Chronicle(ledger)
    periods = timed(
        lambda window: chronicle.count_changed(
            org_id=window[0], partner_program_id=None, start=window[1], end=window[2]
        ),
        recording_windows(ledger, min(samples, 2000)),
    )
    rows = []
    for name, values, target in (
        ("membership lookup", lookup, 0.002),
        ("expiring 100-row page", pages, 0.010),
        ("period history (history --org --from --to: memberships changed)", periods, 0.050),
    ):
        p50, p99 = percentiles(values)
        rows.append(figure(f"{name} p50 ms", p50 * 1e3, None, "-", True, unit="ms"))
        rows.append(
            figure(
                f"{name} p99 ms", p99 * 1e3, None, f"< {target * 1e3:g} ms", p99 < target, unit="ms"
            )
        )
    return rows


def recording_windows(ledger: Ledger, samples: int) -> list[tuple[int, datetime, datetime]]:
    """(org, from, to): a random twentieth of each org's span of recording times (the ingest
    recorded everything within its run), the orgs in proportion to their events."""
    spans = ledger.store.query(  # type: ignore[attr-defined]
        "SELECT org_id, MIN(recorded_at_us) AS first, MAX(recorded_at_us) AS last, "
        "COUNT(*) AS events FROM ledger_inbox GROUP BY org_id"
    )
    rng = random.Random(7)
    windows = []
    for span in rng.choices(spans, weights=[s["events"] for s in spans], k=samples):
        width = max((span["last"] - span["first"]) // 20, 1)
        start = span["first"] + rng.randrange(max(span["last"] - span["first"] - width, 1))
        windows.append((span["org_id"], _instant(start), _instant(start + width)))
    return windows


def _instant(epoch_us: int) -> datetime:
    return datetime.fromtimestamp(epoch_us / 1e6, tz=UTC)


DASHBOARD_PAIRS = (  # page, API endpoint answering the same question
    ("overview", "/dashboard", "/overview"),
    (
        "membership",
        "/dashboard/membership?org={org}&customer={customer}&program={program}",
        "/memberships/{org}/{customer}/{program}/history",
    ),
    (
        "expiring",
        "/dashboard/expiring?from=2023-01-01&to=2030-12-31&limit=100",
        "/expiring?from=2023-01-01&to=2030-12-31&limit=100",
    ),
    ("quarantine", "/dashboard/quarantine", "/quarantine?limit=25"),  # a page shows 25
)


def bench_dashboard(url: str, samples: int) -> list[dict[str, Any]]:
    """p99 of each page against its API endpoint's, sampled alternately on one keep-alive
    connection each, on the ledger the other groups ingested."""
    org, customer, program = busiest_membership(url)
    with (
        tempfile.TemporaryDirectory() as scratch,
        serving("ours", url, 1, 1, Path(scratch)) as (
            base,
            _,
        ),
    ):
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {SECRET}"})
        pages = httpx.Client(base_url=base)
        rows = []
        with api, pages:
            signed = pages.post("/dashboard/sign-in", data={"token": SECRET})
            assert signed.status_code == 303, signed.text
            for name, page, endpoint in DASHBOARD_PAIRS:
                key = {"org": org, "customer": customer, "program": program}
                page_path, api_path = page.format(**key), endpoint.format(**key)
                page_times: list[float] = []
                api_times: list[float] = []
                for _ in range(samples):
                    for client, path, times in (
                        (pages, page_path, page_times),
                        (api, api_path, api_times),
                    ):
                        started = time.perf_counter()
                        answer = client.get(path, timeout=60)
                        times.append(time.perf_counter() - started)
                        assert answer.status_code == 200, (path, answer.status_code)
                (ours50, ours), (base50, baseline) = percentiles(page_times), percentiles(api_times)
                endpoint_name = api_path.split("?")[0]
                rows.append(
                    figure(
                        f"dashboard {name} page p50 ms (baseline: {endpoint_name})",
                        ours50 * 1e3,
                        base50 * 1e3,
                        "-",
                        True,
                        unit="ms",
                    )
                )
                rows.append(
                    figure(
                        f"dashboard {name} page p99 ms (baseline: {endpoint_name})",
                        ours * 1e3,
                        baseline * 1e3,
                        "<= 2x the API's p99",
                        ours <= 2 * baseline,
                        unit="ms",
                    )
                )
    return rows


def busiest_membership(url: str) -> tuple[int, int, int]:
    """The key of the membership with the most events: the longest timeline to draw."""
    with open_ledger(Settings(db=url)) as ledger:
        projector = Projector(ledger)
        projector.catch_up()
        (row,) = projector.store.query(
            "SELECT org_id, customer_id, partner_program_id FROM view_memberships "
            "ORDER BY event_count DESC, org_id, customer_id, partner_program_id LIMIT 1"
        )
    return row["org_id"], row["customer_id"], row["partner_program_id"]


def bench_webhook(admin_url: str, load: tuple[int, int, float]) -> list[dict[str, Any]]:
    """Ours and the CRUD baseline, each with 1 and 2 workers on a fresh database, under the
    same load (senders, requests, time bound) of the same payloads (a new seed: none is a
    duplicate of the ingest figure's)."""
    concurrency, requests, seconds = load
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        payloads = Path(scratch) / "webhooks.jsonl"
        generate(payloads, requests, seed=11)
        load = [sys.executable, str(ROOT / "scripts/bench_load.py"), "--file", str(payloads)]
        load += ["--concurrency", str(concurrency), "--requests", str(requests)]
        load += ["--seconds", str(seconds), "--header", f"X-Webhook-Token:{SECRET}"]
        for system, workers in itertools.product(("ours", "baseline"), (1, 2)):
            result = Path(scratch) / f"load-{system}-{workers}.json"
            with (
                scratch_database(admin_url, f"webhook_{system}_{workers}") as db_url,
                serving(system, db_url, workers, concurrency, Path(scratch)) as (url, group),
            ):
                cpu, database = group_cpu_seconds(group), postgres_cpu_seconds()
                target = ["--url", f"{url}/webhooks/capillary", "--json", str(result)]
                subprocess.run([*load, *target], check=True, timeout=seconds + 120)
                cpu = group_cpu_seconds(group) - cpu
                database = postgres_cpu_seconds() - database
            run = runs[system, workers] = json.loads(result.read_text())
            acknowledged = max(run["acknowledged"], 1)
            run["server_cpu_seconds"] = round(cpu, 3)
            run["server_cpu_ms_per_ack"] = round(cpu * 1e3 / acknowledged, 3)
            run["postgres_cpu_ms_per_ack"] = round(database * 1e3 / acknowledged, 3)
            print(f"webhook {system} --workers {workers}: {json.dumps(run)}", file=sys.stderr)
    (ours_w, ours), (base_w, base) = (
        max(((w, r) for (s, w), r in runs.items() if s == system), key=lambda x: x[1]["throughput"])
        for system in ("ours", "baseline")
    )
    p50, p99 = (float("nan") if ours[k] is None else ours[k] for k in ("p50_ms", "p99_ms"))
    rows = [
        figure(
            f"webhook acknowledged/s (ours --workers {ours_w}, CRUD --workers {base_w})",
            ours["throughput"],
            base["throughput"],
            ">= 1.0x CRUD baseline",
            ours["throughput"] >= base["throughput"],
            unit="/s",
        ),
        figure("webhook p50 ms", p50, base["p50_ms"], "-", True, unit="ms"),
        figure("webhook p99 ms", p99, base["p99_ms"], "< 50 ms", p99 < 50, unit="ms"),
        figure(
            "webhook server CPU ms per acknowledged",
            ours["server_cpu_ms_per_ack"],
            base["server_cpu_ms_per_ack"],
            "-",
            True,
            unit="ms",
        ),
        figure(
            "webhook PostgreSQL CPU ms per acknowledged",
            ours["postgres_cpu_ms_per_ack"],
            base["postgres_cpu_ms_per_ack"],
            "-",
            True,
            unit="ms",
        ),
        figure(
            "webhook load generator CPU (cores)",
            ours["cpu_share"],
            base["cpu_share"],
            "< 0.5 (not the bottleneck)",
            max(ours["cpu_share"], base["cpu_share"]) < 0.5,
        ),
    ]
    rows[0]["runs"] = {f"{s} --workers {w}": r for (s, w), r in runs.items()}
    return rows


def group_cpu_seconds(group: int) -> float:
    """User + system CPU seconds so far of the live processes of a process group (Linux)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == group:  # after the name: state, ppid, pgrp, ..., utime, stime
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def serving(
    system: str, db_url: str, workers: int, concurrency: int, scratch: Path
) -> Iterator[tuple[str, int]]:
    """``partner-ledger serve`` (ours) or ``bench_crud.py`` (baseline) on a free loopback port,
    its URL and process group once ``/readyz`` answers 200; stopped (SIGTERM, then SIGKILL of
    what is left of its group) afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTNER_LEDGER_")}
    if system == "ours":
        command = [str(CLI), "--db", db_url, "serve", "--port", str(port)]
        env |= {"PARTNER_LEDGER_WEBHOOK_SECRETS": SECRET, "PARTNER_LEDGER_READ_TOKEN": SECRET}
    else:
        pool = max(1, min(concurrency, 64) // workers)  # the server allows 100 connections
        command = [sys.executable, str(ROOT / "scripts/bench_crud.py"), "--db", db_url]
        command += ["--port", str(port), "--pool", str(pool)]
        env["BENCH_CRUD_WEBHOOK_SECRETS"] = SECRET
    log = scratch / f"{system}-{workers}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers can be killed with it, as a group
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{system} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        time.sleep(2 if workers > 1 else 0)  # let every worker start accepting
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        finally:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def timed(call: Callable[[Any], Any], items: Any) -> list[float]:
    times = []
    for item in items:
        started = time.perf_counter()
        call(item)
        times.append(time.perf_counter() - started)
    return times


def notification(*, customer: int) -> bytes:
    return json.dumps(
        {
            "eventName": "partnerProgramLinked",
            "orgId": 50191,
            "createdAt": 1700000000000,
            "data": {
                "customerIdentifiers": {"customerId": customer},
                "loyaltyProgramId": 855,
                "partnerProgramId": 25,
                "partnerProgramType": "EXTERNAL",
                "customerPartnerProgramDetails": {"partnerTierNumber": 1},
            },
        }
    ).encode()


def bench_cli_help() -> list[dict[str, Any]]:
    """``--help`` beside a bare interpreter start: the parser imports nothing heavy."""

    def median_seconds(command: list[str]) -> float:
        times = []
        for _ in range(HELP_RUNS):
            started = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=60)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    help_seconds = median_seconds([str(CLI), "--help"])
    bare_seconds = median_seconds([sys.executable, "-c", "pass"])
    ratio = help_seconds / bare_seconds
    return [
        figure(
            "cli --help, ms (baseline python -c pass)",
            help_seconds * 1000,
            bare_seconds * 1000,
            "<= 3x",
            ratio <= 3,
            "ms",
        )
    ]


def percentiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


def figure(
    name: str, ours: float, baseline: float | None, target: str, met: bool, unit: str = ""
) -> dict[str, Any]:
    ratio = None if not baseline else ours / baseline
    return {
        "figure": name,
        "ours": round(ours, 3),
        "baseline": None if baseline is None else round(baseline, 3),
        "ratio": None if ratio is None else round(ratio, 3),
        "target": target,
        "met": met,
        "unit": unit,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("figure", "ours", "baseline", "ratio", "target", "met?")
    lines = [header] + [
        (
            r["figure"],
            f"{r['ours']:,.2f}",
            "-" if r["baseline"] is None else f"{r['baseline']:,.2f}",
            "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
            r["target"],
            "yes" if r["met"] else "NO",
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)))


if __name__ == "__main__":
    raise SystemExit(main())
