"""The eventsourcing peer of the ingest benchmark: a plain `eventsourcing` Application saving
events, nothing else (no inbox, no heads, no views, no chains).

    .venv/bin/python scripts/bench_peer.py --db postgresql://... --events N --state-bytes B

Same library version and PostgreSQL server as ours, default library settings; ``--per-save``
new aggregates per ``save()`` (500, as an ingest batch holds up to 500 notifications), each
with one event whose stored state is padded to ``--state-bytes`` (the mean size of our stored
events). Prints one JSON object: events, seconds, events/s, client CPU seconds. Run by
``scripts/bench.py`` in a process of its own so that its CPU is measured apart.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate


class PeerMembership(Aggregate):
    """One aggregate per notification's worth of data: its creation event carries it."""

    def __init__(self, data: str) -> None:
        self.data = data


class Peer(Application[UUID]):
    name = "BenchPeer"


def postgres_env(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")),
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
    }


def padding_for(app: Peer, state_bytes: int) -> int:
    """How many characters of data make a stored event of ``state_bytes`` bytes."""
    probe = PeerMembership(data="")
    empty = app.mapper.to_stored_event(probe.collect_events()[0])
    return max(state_bytes - len(empty.state), 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="postgresql://USER@HOST:PORT/DB")
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--state-bytes", type=int, required=True)
    parser.add_argument("--per-save", type=int, default=500)
    args = parser.parse_args()
    app = Peer(env=postgres_env(args.db))
    data = "x" * padding_for(app, args.state_bytes)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    saved = 0
    while saved < args.events:
        count = min(args.per_save, args.events - saved)
        app.save(*(PeerMembership(data=data) for _ in range(count)))
        saved += count
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    app.close()
    result: dict[str, Any] = {
        "events": saved,
        "seconds": round(seconds, 3),
        "events_per_second": round(saved / seconds, 1),
        "client_cpu_seconds": round(
            cpu_after.ru_utime - cpu_before.ru_utime + cpu_after.ru_stime - cpu_before.ru_stime,
            3,
        ),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
