"""Where an ingest's time goes, stage by stage: one `partner-ledger ingest` sampled by py-spy.

    .venv/bin/python scripts/profile_stages.py [--count 100000] [--seed 21] [--rate 200]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--keep FILE]

Generates ``--count`` notifications (`scripts/generate_notifications.py`), then runs
``partner-ledger ingest`` of them into a scratch PostgreSQL database under ``py-spy record``
(a sampling profiler in another process: the ingest runs at its own speed, unlike under
cProfile, which inflated the cost of small Python calls several times). Each sample of the
main thread, busy or idle, is given to the innermost stage on its stack, so the rows add up to
the main thread's wall time: its Python work per stage, and its waits (for PostgreSQL, for the
parse workers) as rows of their own. The parse workers' CPU, the ingest's CPU and PostgreSQL's CPU
over the same run are printed beside it, per notification. Not a test; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench import postgres_cpu_seconds  # noqa: E402
from scripts.generate_notifications import generate  # noqa: E402
from scripts.scratch import scratch_database  # noqa: E402

BIN = Path(sys.executable).parent
# (stage, function or method name, the end of its file's path); a sample goes to the
# innermost of these on its stack.
STAGES = (
    ("waiting for PostgreSQL", "wait", "psycopg/connection.py"),
    ("parse results taken from the workers", "parsed", "infrastructure/parsing.py"),
    ("classify (one query)", "classify_batch", "domain/classify.py"),
    ("resume (snapshots, late histories)", "resume", "domain/resume.py"),
    ("seal identifiers (keys, AES-GCM)", "seal", "infrastructure/vault.py"),
    ("fold", "fold_next", "domain/fold.py"),
    ("encode stored events", "encode", "domain/encode.py"),
    ("encode snapshots", "encode_snapshot", "domain/snapshots.py"),
    ("chain tips", "chain_tips", "infrastructure/ledger_queries/chains.py"),
    ("write: events and inbox by COPY", "_append_rows", "infrastructure/recorders/postgres.py"),
    ("write: inbox rows, chain hashes", "_write_inbox", "infrastructure/recorders/tables.py"),
    ("write: snapshots", "_write_snapshots", "infrastructure/recorders/tables.py"),
    ("write: views inline", "write", "infrastructure/views/inline.py"),
    ("write: the rest", "insert_events", "infrastructure/recorders/postgres.py"),
    ("the batch's other work", "record_batch", "domain/batch.py"),
    ("views catch-up at the end", "catch_up", "projections/runner.py"),
    ("reading the file, batching, output", "ingest", "infrastructure/cli/recording.py"),
)
OTHER = "start-up (imports, connections, schema)"
FRAME = re.compile(r"(?P<function>.*) \((?P<path>.*):\d+\)$")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", type=Path, help="also keep py-spy's raw samples there")
    args = parser.parse_args()
    spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install -e '.[dev]' installs it")
    with tempfile.TemporaryDirectory(prefix="profile-") as scratch:
        stream, samples = Path(scratch) / "stream.jsonl", Path(scratch) / "samples.txt"
        stream.write_text("".join(f"{line}\n" for line in generate(args.count, seed=args.seed)))
        with scratch_database(args.admin_url, "profile") as url:
            server, wall = postgres_cpu_seconds(), time.perf_counter()
            sampler = [spy, "record", "--idle", "--format", "raw", "--rate", str(args.rate)]
            ingest = [str(BIN / "partner-ledger"), "--db", url, "ingest", str(stream), "--json"]
            done = subprocess.run(
                [*sampler, "--output", str(samples), "--", *ingest],
                check=True,
                capture_output=True,
                text=True,
            )
            server, wall = postgres_cpu_seconds() - server, time.perf_counter() - wall
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        # py-spy says what it did on the same stream: the ingest's summary is the JSON line.
        summary = json.loads(next(x for x in done.stdout.splitlines() if x.startswith("{")))
        stages = attributed(samples.read_text())
        if args.keep:
            shutil.copy(samples, args.keep)
    per = 1e6 / args.count
    seconds = 1 / args.rate
    total = sum(stages.values())
    print(f"{args.count:,} notifications ({summary['recorded']:,} recorded), main thread:")
    print(f"{'stage':<42} {'us per notification':>20} {'share':>7}")
    for stage in [*(name for name, _, _ in STAGES), OTHER]:
        print(f"{stage:<42} {stages[stage] * seconds * per:>20.1f} {stages[stage] / total:>7.1%}")
    cpu = children.ru_utime + children.ru_stime
    print(
        f"\nper notification over the same run: wall {wall * per:.1f} us; CPU of the ingest "
        f"and its parse workers {cpu * per:.1f} us; PostgreSQL's CPU {server * per:.1f} us"
    )
    return 0


def attributed(raw: str) -> Counter[str]:
    """Samples of the main thread per stage (py-spy's raw format: ``frame;frame;... count``,
    outermost first)."""
    stages: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if frames[0].startswith("Thread._bootstrap"):
            continue  # another thread: the pool's, the parse results' reader
        stages[_stage(frames)] += int(count)
    return stages


def _stage(frames: list[str]) -> str:
    for frame in reversed(frames):
        if (match := FRAME.match(frame)) is None:
            continue
        for stage, function, path in STAGES:
            name = match["function"].rpartition(".")[2]  # py-spy names methods Class.method
            if name == function and match["path"].endswith(path):
                return stage
    return OTHER


if __name__ == "__main__":
    raise SystemExit(main())
