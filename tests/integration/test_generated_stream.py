"""A generated stream, shuffled and duplicated, gives the same memberships on both stores."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from domain.ledger import membership_record
from infrastructure.settings import Settings
from infrastructure.wiring import open_ledger
from tests.conftest import generated
from tests.oracle import membership_states


def ingest(db_url: str, lines: list[bytes]) -> tuple[Counter[str], list[dict[str, Any]]]:
    """Ingest in batches of 500; return the outcome counts and the exported memberships."""
    tally: Counter[str] = Counter()
    with open_ledger(Settings(db=db_url)) as ledger:
        for start in range(0, len(lines), 500):
            tally.update(outcome.status for outcome in ledger.receive(lines[start : start + 500]))
        return tally, [membership_record(state) for state in membership_states(ledger)]


@pytest.mark.slow
def test_shuffled_and_duplicated_streams_give_identical_memberships_on_both_stores(
    tmp_path: Path, postgres_url: str
) -> None:
    lines = generated(10_000, seed=20261129)
    shuffled = random.Random(1).sample(lines, len(lines))
    duplicated = random.Random(2).sample(lines * 2, 2 * len(lines))
    variants = {"original": lines, "shuffled": shuffled, "duplicated": duplicated}

    exports = {}
    tallies = {}
    for name, variant in variants.items():
        for store, url in (("sqlite", f"sqlite:///{tmp_path / name}.db"), ("postgres", None)):
            url = url or postgres_url
            tally, export = ingest(url, variant)
            # Every payload is accounted for.
            assert sum(tally.values()) == len(variant)
            exports[name, store] = export
            tallies[name, store] = tally
            if store == "postgres":
                # Reuse the one PostgreSQL database: empty it for the next variant.
                _drop_tables(postgres_url)

    reference = exports["original", "sqlite"]
    assert len(reference) > 1_000
    for key, export in exports.items():
        assert export == reference, f"{key} differs from the original on SQLite"
    recorded = {tally["recorded"] for tally in tallies.values()}
    assert len(recorded) == 1
    assert tallies["original", "sqlite"]["quarantined"] > 0
    assert tallies["duplicated", "sqlite"]["duplicate"] >= len(lines)


def _drop_tables(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
