"""One-off: the same generated stream ingested by the old code and by the new, compared.

    .venv/bin/python scripts/compare_old_new.py [--count 1000000] [--old-commit REV]
        [--admin-url URL]

The old code runs from a git worktree of ``--old-commit`` (default: the commit before the write
pipeline), with this venv's interpreter and the worktree first on ``PYTHONPATH``; the new code
is this checkout. Each ingests the file into its own scratch PostgreSQL database. Then both
must give byte-identical exports (memberships and expiry, JSON Lines and CSV), identical
histories (every org's period history over all time, recording times and positions aside),
``verify`` ok, and an empty ``rebuild --diff``. Prints one JSON summary; exit 1 on a
difference. Not a test: run once by hand (the full size needs a quiet machine and ~1 h), its
result recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scratch import scratch_database  # scripts/, beside this one

ROOT = Path(__file__).resolve().parents[1]
OLD_COMMIT = "37f64ce"  # main before the write pipeline (issue 12)
CLI = "import sys; from infrastructure.cli import main; sys.exit(main())"
# What differs by design between two ingests of the same stream.
RUN_FIELDS = frozenset({"recorded_at", "position"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--old-commit", default=OLD_COMMIT)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="compare-") as scratch:
        work = Path(scratch)
        stream = work / "stream.jsonl"
        generator = [sys.executable, str(ROOT / "scripts/generate_notifications.py")]
        subprocess.run(
            [
                *generator,
                "--count",
                str(args.count),
                "--seed",
                str(args.seed),
                "--out",
                str(stream),
            ],
            check=True,
        )
        with old_worktree(args.old_commit, work / "old") as old_root:
            summary: dict[str, Any] = {"count": args.count, "old_commit": args.old_commit}
            with (
                scratch_database(args.admin_url, "compare_old") as old_url,
                scratch_database(args.admin_url, "compare_new") as new_url,
            ):
                runs = {"old": (old_root, old_url), "new": (ROOT, new_url)}
                for name, (root, url) in runs.items():
                    started = time.perf_counter()
                    ingested = cli(root, url, "ingest", str(stream), "--json")
                    summary[f"{name}_seconds"] = round(time.perf_counter() - started, 1)
                    summary[f"{name}_ingest"] = json.loads(ingested)
                outputs = {name: observations(root, url) for name, (root, url) in runs.items()}
            summary["differences"] = [
                what for what in outputs["old"] if outputs["old"][what] != outputs["new"][what]
            ]
            summary["checks"] = {name: outputs[name]["checks"] for name in outputs}
    print(json.dumps(summary, indent=2))
    ok = not summary["differences"] and all(
        checks == {"verify": True, "rebuild_diff_empty": True}
        for checks in summary["checks"].values()
    )
    return 0 if ok else 1


def observations(root: Path, url: str) -> dict[str, Any]:
    """What a ledger says, in forms that must agree between the two runs."""
    seen: dict[str, Any] = {}
    for view in ("memberships", "expiry"):
        for form in ("jsonl", "csv"):
            seen[f"export {view} {form}"] = cli(root, url, "export", view, "--format", form)
    orgs = sorted(
        {json.loads(line)["org_id"] for line in seen["export memberships jsonl"].splitlines()}
    )
    for org in orgs:
        text = cli(
            root,
            url,
            "history",
            "--org",
            str(org),
            "--from",
            "1970-01-01",
            "--to",
            "2999-01-01",
            "--json",
        )
        seen[f"history org {org}"] = sorted(
            json.dumps(
                {k: v for k, v in json.loads(line).items() if k not in RUN_FIELDS}, sort_keys=True
            )
            for line in text.splitlines()
        )
    verify = json.loads(cli(root, url, "verify", "--json"))
    diff = json.loads(cli(root, url, "rebuild", "--diff", "--json"))
    seen["checks"] = {"verify": bool(verify.get("ok")), "rebuild_diff_empty": not _differs(diff)}
    return seen


def _differs(diff: list[dict[str, Any]]) -> bool:
    """True when a ``rebuild --diff --json`` report names any change in any view."""
    fields = ("changed", "added", "removed", "columns_added", "columns_removed")
    return any(view[field] for view in diff for field in fields)


def cli(root: Path, url: str, *arguments: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", CLI, "--db", url, *arguments],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@contextmanager
def old_worktree(commit: str, path: Path) -> Iterator[Path]:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit],
        check=True,
        stdout=sys.stderr,
    )
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import domain.ledger as m; print(m.__file__)"],
            cwd=path,
            env={**os.environ, "PYTHONPATH": str(path)},
            check=True,
            capture_output=True,
            text=True,
        )
        if not probe.stdout.startswith(str(path)):
            raise SystemExit(
                f"the old worktree's code is not the one imported: {probe.stdout.strip()}"
            )
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=True
        )


if __name__ == "__main__":
    sys.exit(main())
