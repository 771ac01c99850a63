"""A/B of the encode stage: the json module's writers against `domain.json_bytes`, per item.

Generates notifications (``scripts/generate_notifications.py``), parses them and folds them in
arrival order into fresh memberships (no store), then times, in interleaved rounds of CPU time:
each stored event encoded through the library's transcoder (the encode stage before
`domain.json_bytes`) and through `EventEncoder`; each membership's snapshot text by
``json.dumps`` and by `encode_snapshot`; identifiers as the vault seals them, by ``json.dumps``
and by `ascii_json`. Every pair is checked byte for byte first.

    .venv/bin/python scripts/bench_encode.py --count 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    UUIDAsHex,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from domain.decode import parse_all
from domain.encode import EventEncoder
from domain.fold import Standing, fold_next
from domain.json_bytes import ascii_json
from domain.keys import membership_id
from domain.library_settings import DateAsISO
from domain.notifications import Kind, Notification
from domain.snapshots import FORMAT, encode_snapshot
from domain.state import MembershipState, Snapshot
from scripts.generate_notifications import generate

Event = tuple[Kind, Any, int, dict[str, Any]]
SEALED = "v1." + "A" * 128  # the length of a sealed identifiers string


def folded(count: int) -> tuple[list[Event], list[Snapshot], list[dict[str, str]]]:
    """The stream's events (kind, membership, version, values), last snapshots, identifiers."""
    parsed = parse_all([line.encode() for line in generate(count, seed=3)])
    standings: dict[Any, Standing] = {}
    events: list[Event] = []
    identifiers: list[dict[str, str]] = []
    clock = datetime(2026, 1, 1, tzinfo=UTC)
    for item in parsed:
        if not isinstance(item, Notification):
            continue
        key = item.key
        standing = standings.setdefault(membership_id(key), Standing.new(membership_id(key), key))
        clock += timedelta(microseconds=137)
        values = fold_next(standing, item, timestamp=clock, identifiers=SEALED)
        events.append((item.kind, standing.membership_id, standing.version, values))
        identifiers.append(item.identifiers.model_dump(exclude_none=True))
    return events, [s.snapshot for s in standings.values()], identifiers


def library_encode(encoder: EventEncoder, transcoder: JSONTranscoder, event: Event) -> StoredEvent:
    """The encode stage as it was: the same state, written by the library's transcoder."""
    kind, originator, version, values = event
    topic, names, class_version = encoder.layouts[kind]
    state = {name: values[name] for name in names}
    if class_version > 1:
        state["class_version"] = class_version
    return StoredEvent(originator, version, topic, transcoder.encode(state))


def json_snapshot(snapshot: Snapshot) -> str:
    """The snapshot text as it was: `encode_snapshot` with ``json.dumps``."""
    state = {
        name: value.isoformat() if isinstance(value, date) else value
        for name, value in zip(MembershipState._fields, snapshot.state, strict=True)
    }
    document = {"format": FORMAT, "latest": snapshot.latest_occurrence.isoformat(), "state": state}
    return json.dumps(document, separators=(",", ":"))


def per_item_us(write: Callable[[Any], object], items: Sequence[Any]) -> float:
    started = time.process_time()
    for item in items:
        write(item)
    return (time.process_time() - started) / len(items) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), DateAsISO()):
        transcoder.register(transcoding)
    encoder = EventEncoder(Mapper(transcoder=transcoder))
    events, snapshots, identifiers = folded(args.count)
    pairs: dict[str, tuple[Callable[[Any], object], Callable[[Any], object], Sequence[Any]]] = {
        "stored event": (
            lambda e: library_encode(encoder, transcoder, e),
            lambda e: encoder.encode(*e),
            events,
        ),
        "snapshot": (json_snapshot, encode_snapshot, snapshots),
        "identifiers": (
            lambda i: json.dumps(i, sort_keys=True, separators=(",", ":")),
            lambda i: ascii_json(i, sort_keys=True),
            identifiers,
        ),
    }
    for name, (old, new, items) in pairs.items():
        if any(old(item) != new(item) for item in items):
            raise SystemExit(f"{name}: the new text differs")
    print(f"{len(events)} events, {len(snapshots)} snapshots; us per item, old / new (ratio)")
    for round_ in range(1, args.rounds + 1):
        figures = []
        for name, (old, new, items) in pairs.items():
            before, after = per_item_us(old, items), per_item_us(new, items)
            figures.append(f"{name} {before:.2f} / {after:.2f} ({after / before:.2f}x)")
        print(f"round {round_}: " + ", ".join(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
