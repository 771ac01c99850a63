"""Parse CPU per payload: the full path against the decode stage (fast path first), same run.

    .venv/bin/python scripts/bench_parse.py [--count 20000] [--seed 1] [--repeat 5]

Generates ``--count`` realistic lines (`scripts/generate_notifications.py`: all shapes, stray
spaces, digit strings, floats, redeliveries, malformed lines), then times, in batches of 500
and interleaved ``--repeat`` times (the best of each kept), the CPU time of this process for:

- ``full path``: `parse_notification` and the fingerprint of every payload (what the decode
  stage did before the fast path);
- ``decode stage``: `domain.decode.parse_all` (the fast path, and the full path for what it
  declines), fingerprints included;
- ``fast path alone``: `fast_notification` on the payloads it takes, beside the full path on
  those same payloads.

Prints one line per figure: microseconds of CPU per payload and the ratio to the full path.
Not a test; it asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domain.decode import parse_all  # noqa: E402
from domain.errors import InvalidNotificationError  # noqa: E402
from domain.notifications import fast_notification, parse_notification  # noqa: E402
from scripts.generate_notifications import generate  # noqa: E402

BATCH = 500


def full_path(batch: Sequence[bytes]) -> None:
    for raw in batch:
        try:
            notification = parse_notification(raw)
        except InvalidNotificationError:
            continue
        notification.fingerprint  # noqa: B018 - computed, as the decode stage does


def fast_path(batch: Sequence[bytes]) -> None:
    for raw in batch:
        notification = fast_notification(raw)
        assert notification is not None
        notification.fingerprint  # noqa: B018


def decode_stage(batch: Sequence[bytes]) -> None:
    parse_all(batch)


def cpu_per_payload(
    runs: dict[str, tuple[Callable[[Sequence[bytes]], None], list[bytes]]], repeat: int
) -> dict[str, float]:
    """Best CPU microseconds per payload of each run, the runs interleaved."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, (run, payloads) in runs.items():
            started = time.process_time()
            for start in range(0, len(payloads), BATCH):
                run(payloads[start : start + BATCH])
            elapsed = time.process_time() - started
            best[name] = min(best[name], elapsed * 1e6 / len(payloads))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    payloads = [line.encode() for line in generate(args.count, seed=args.seed)]
    taken = [raw for raw in payloads if fast_notification(raw) is not None]
    best = cpu_per_payload(
        {
            "full path": (full_path, payloads),
            "decode stage": (decode_stage, payloads),
            "full path, on what the fast path takes": (full_path, taken),
            "fast path alone, on what it takes": (fast_path, taken),
        },
        args.repeat,
    )
    print(f"{len(payloads):,} payloads, {len(taken) / len(payloads):.1%} taken by the fast path")
    for name, baseline in [
        ("full path", "full path"),
        ("decode stage", "full path"),
        ("full path, on what the fast path takes", "full path, on what the fast path takes"),
        ("fast path alone, on what it takes", "full path, on what the fast path takes"),
    ]:
        ratio = best[name] / best[baseline]
        print(f"{name:<42} {best[name]:7.1f} us CPU per payload  {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
