"""Commands that put payloads in: ingest, and the quarantine."""

from __future__ import annotations

import argparse
import time
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

from domain import services
from domain.errors import LedgerError
from domain.ledger import Ledger
from infrastructure.cli.output import (
    note,
    outcome_json,
    print_fields,
    print_json,
    quarantine_json,
)
from infrastructure.cli.table import print_table
from infrastructure.parsing import Parser, parse_workers
from infrastructure.progress import Progress
from infrastructure.sources import open_source, payloads
from projections.runner import Projector


def ingest(args: argparse.Namespace, ledger: Ledger) -> int:
    paths: list[str] = args.paths
    if paths.count("-") > 1:
        raise LedgerError("stdin (-) can be read only once")
    batch_size = args.batch_size or 500
    tally: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    started = time.perf_counter()
    sources = [open_source(path) for path in paths]
    sizes = [size for _, size in sources]
    total = None if None in sizes else sum(size or 0 for size in sizes)
    # The views current first (built, on a new ledger): then every batch moves them inline.
    Projector(ledger).catch_up()
    recording = services.Recording(ledger)
    with (
        Progress(total=total, unit="B", quiet=args.json, label="ingest") as progress,
        Parser(parse_workers(total)) as parser,
    ):
        for path, (stream, _) in zip(paths, sources, strict=True):
            name = "stdin" if path == "-" else path
            with stream:
                # The parser reads ahead; each batch's sources wait here in the same order.
                origins: deque[list[str]] = deque()
                items = batches(payloads(stream, name=name), batch_size, origins)
                for batch, consumed, parsed in parser.parsed(items):
                    where = origins.popleft()
                    for outcome in recording.record(batch, parsed=parsed, sources=where):
                        tally[outcome.status] += 1
                        if outcome.reason:
                            reasons[outcome.reason] += 1
                    progress.advance(
                        consumed,
                        recorded=tally["recorded"],
                        duplicates=tally["duplicate"],
                        quarantined=tally["quarantined"],
                    )
    # Catch up any view the batches could not move (behind, or its update failed), so queries
    # and exports reflect what was just recorded, and extend the log digest's checkpoints.
    projected = time.perf_counter()
    Projector(ledger).catch_up()
    services.extend_checkpoints(ledger)
    summary: dict[str, Any] = {
        "received": sum(tally.values()),
        "recorded": tally["recorded"],
        "duplicates": tally["duplicate"],
        "quarantined": tally["quarantined"],
        "quarantined_by_reason": dict(sorted(reasons.items())),
        "conflicts_retried": ledger.conflicts,
        "seconds": round(time.perf_counter() - started, 3),
        "projection_seconds": round(time.perf_counter() - projected, 3),
    }
    if args.json:
        print_json(summary)
    else:
        by_reason = ", ".join(f"{k} {v}" for k, v in summary["quarantined_by_reason"].items())
        print(
            f"received {summary['received']}: recorded {summary['recorded']}, duplicates "
            f"{summary['duplicates']}, quarantined {summary['quarantined']}"
            + (f" ({by_reason})" if by_reason else "")
        )
    return 0


def batches(
    items: Iterator[tuple[bytes, int, str]], size: int, origins: deque[list[str]]
) -> Iterator[tuple[list[bytes], int]]:
    """Payloads in batches of ``size``; each batch's sources are appended to ``origins``."""
    batch: list[bytes] = []
    where: list[str] = []
    consumed = 0
    for payload, length, source in items:
        batch.append(payload)
        where.append(source)
        consumed += length
        if len(batch) >= size:
            origins.append(where)
            yield batch, consumed
            batch, where, consumed = [], [], 0
    if batch:
        origins.append(where)
        yield batch, consumed


def quarantine_list(args: argparse.Namespace, ledger: Ledger) -> int:
    rows = services.quarantined(ledger, include_resolved=args.all)
    entries = [quarantine_json(row) for row in rows]
    if args.reason:
        entries = [e for e in entries if e["reason"] == args.reason.upper()]
    if args.json:
        print_json(entries)
        return 0
    if not entries:
        kind = f"{args.reason.upper()} " if args.reason else ""
        note(f"no {'' if args.all else 'open '}{kind}quarantine entries")
        return 0
    print_table(
        (
            "id",
            "reason",
            "received",
            "times",
            "source",
            "detail",
            *(("resolution",) if args.all else ()),
        ),
        (
            [
                e["id"],
                e["reason"],
                e["received_at"],
                e["times_received"],
                e["source"] or "not recorded",
                e["detail"],
                *((e["resolution"],) if args.all else ()),
            ]
            for e in entries
        ),
    )
    return 0


def quarantine_drop(args: argparse.Namespace, ledger: Ledger) -> int:
    dropped = ledger.drop_quarantined(args.ids, why=args.why)
    if args.json:
        print_json({"dropped": dropped, "why": args.why.strip()})
        return 0
    if not dropped:
        note("nothing dropped: those entries were closed already")
        return 0
    count = f"{len(dropped)} {'entry' if len(dropped) == 1 else 'entries'}"
    print(f"dropped {count} ({', '.join(dropped)}): {args.why.strip()}")
    print("their bytes are kept: 'quarantine list --all' shows them with the reason")
    return 0


def quarantine_show(args: argparse.Namespace, ledger: Ledger) -> int:
    row = ledger.quarantine_entry(args.id)
    entry = quarantine_json(row) | {"raw": row["raw"].decode("utf-8", errors="replace")}
    if args.json:
        print_json(entry)
    else:
        print_fields({k: v for k, v in entry.items() if k != "raw"})
        print("raw:")
        print(entry["raw"])
    return 0


def quarantine_replay(args: argparse.Namespace, ledger: Ledger) -> int:
    results = ledger.replay_quarantined(args.ids or None)
    if args.json:
        print_json([{"id": qid, **outcome_json(outcome)} for qid, outcome in results])
        return 0
    if not results:
        note("nothing to replay: the quarantine has no open entries")
        return 0
    print_table(
        ("id", "now", "reason"),
        ([qid, outcome.status, outcome.reason] for qid, outcome in results),
    )
    tally = Counter(outcome.status for _, outcome in results)
    replayed = f"{len(results)} {'entry' if len(results) == 1 else 'entries'}"
    print(
        f"replayed {replayed}: recorded {tally['recorded']}, "
        f"duplicates {tally['duplicate']}, still quarantined {tally['quarantined']}"
    )
    return 0
