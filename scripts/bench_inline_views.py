"""The views inline against catch-up after the batches, measured alone, in one process.

    .venv/bin/python scripts/bench_inline_views.py [--rounds 2] [--count 20000]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Records the same generated notifications, in batches of 500, into fresh PostgreSQL databases,
interleaved: through `Recording.record` (the doors' use case: views moved in each batch's
transaction) and through `Ledger.receive` (views left behind), each followed by one catch-up.
Parsing is done beforehand and left out of both. Prints client CPU and wall time per
notification; nothing here asserts anything about speed.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domain.decode import parse_all  # noqa: E402
from domain.services import Recording  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402
from infrastructure.wiring import open_ledger  # noqa: E402
from projections.runner import Projector  # noqa: E402
from scripts.generate_notifications import generate  # noqa: E402


def run(admin_url: str, batches: list[list[bytes]], *, inline: bool) -> tuple[float, float, float]:
    """Client CPU per notification (all, and of the writes alone) and wall time, in us."""
    name = f"bench_inline_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    count = sum(len(batch) for batch in batches)
    parsed = [parse_all(batch) for batch in batches]
    try:
        with open_ledger(Settings(db=f"{admin_url.rsplit('/', 1)[0]}/{name}")) as ledger:
            Projector(ledger).catch_up()  # the (empty) views built first, as ingest does
            recording = Recording(ledger)
            cpu, wall = time.process_time(), time.perf_counter()
            for batch, items in zip(batches, parsed, strict=True):
                if inline:
                    recording.record(batch, parsed=items)
                else:
                    ledger.receive(batch, parsed=items)
            writes = time.process_time() - cpu
            Projector(ledger).catch_up()
            total, seconds = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return total / count * 1e6, writes / count * 1e6, seconds / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    stream = [line.encode() for line in generate(args.count, seed=5)]
    batches = [stream[start : start + 500] for start in range(0, len(stream), 500)]
    for number in range(args.rounds):
        for inline in (False, True):
            cpu, writes, wall = run(args.admin_url, batches, inline=inline)
            path = "views inline" if inline else "catch-up after"
            print(
                f"round {number} {path:>14}: client CPU {cpu:.0f} us per notification "
                f"(the writes {writes:.0f}), wall {wall:.0f} us",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
