"""Where an ingest's client CPU goes, stage by stage: one profiled `partner-ledger ingest`.

    .venv/bin/python scripts/profile_stages.py [--count 100000] [--seed 21]
        [--admin-url postgresql://postgres@127.0.0.1:5432/postgres] [--save FILE]

Generates ``--count`` notifications (`scripts/generate_notifications.py`), then runs the
command line's ``ingest`` in this process, into a scratch PostgreSQL database, under cProfile
timed by the main thread's own CPU clock (`time.thread_time`): waiting for the server or for
the parse workers costs that clock nothing, so each stage's figure is the CPU the main thread
spent in it, with the profiler's overhead (compare stages with each other, not with other
runs). Beside the table: the main thread's CPU unprofiled is not known, so the process's CPU,
the parse workers' CPU and the wall time of the same run are printed, per notification.
Not a test; it asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infrastructure.cli import main as cli  # noqa: E402
from scripts.generate_notifications import generate  # noqa: E402
from scripts.scratch import scratch_database  # noqa: E402

# (stage, module path suffix, function): cumulative main-thread CPU of that function.
STAGES = (
    ("parse results taken from the workers", "infrastructure/parsing.py", "parsed"),
    ("classify (one query)", "domain/classify.py", "classify_batch"),
    ("resume (snapshots, late histories)", "domain/resume.py", "resume"),
    ("seal identifiers (keys, AES-GCM)", "infrastructure/vault.py", "seal"),
    ("fold", "domain/fold.py", "fold_next"),
    ("encode stored events", "domain/encode.py", "encode"),
    ("encode snapshots", "domain/snapshots.py", "encode_snapshot"),
    ("chain tips", "infrastructure/ledger_queries/chains.py", "chain_tips"),
    ("write (insert_events), of which:", "infrastructure/recorders/postgres.py", "insert_events"),
    ("  events and inbox by COPY", "infrastructure/recorders/postgres.py", "_append_rows"),
    ("  inbox rows and chain hashes", "infrastructure/recorders/tables.py", "_write_inbox"),
    ("  snapshots", "infrastructure/recorders/tables.py", "_write_snapshots"),
    ("  views inline", "infrastructure/views/inline.py", "write"),
    ("batch, in all (record_batch)", "domain/batch.py", "record_batch"),
    ("views catch-up at the end", "projections/runner.py", "catch_up"),
    ("ingest, in all", "infrastructure/cli/recording.py", "ingest"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--save", type=Path, help="also write the profile there (pstats)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-") as scratch:
        stream = Path(scratch) / "stream.jsonl"
        stream.write_text("".join(f"{line}\n" for line in generate(args.count, seed=args.seed)))
        with scratch_database(args.admin_url, "profile") as url:
            profile = cProfile.Profile(time.thread_time)
            workers = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu, wall = time.process_time(), time.perf_counter()
            profile.enable()
            code = cli(["--db", url, "ingest", str(stream), "--json"])
            profile.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        return code
    if args.save:
        profile.dump_stats(args.save)
    per = 1e6 / args.count
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    print(f"\n{'stage':<44} {'main-thread CPU us per notification':>36}")
    for stage, path, function in STAGES:
        seconds = sum(
            entry[3]
            for (filename, _, name), entry in stats.items()
            if filename.endswith(path) and name == function
        )
        print(f"{stage:<44} {seconds * per:>36.1f}")
    worker_seconds = (after.ru_utime + after.ru_stime) - (workers.ru_utime + workers.ru_stime)
    print(
        f"\nthe same run, per notification: process CPU {cpu * per:.1f} us (all its threads, "
        f"profiled), parse workers {worker_seconds * per:.1f} us, wall {wall * per:.1f} us"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
