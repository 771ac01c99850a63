"""The write pipeline against the reference model: aggregates and the library's mapper.

Generated streams, in any order, with redeliveries and in any batching, go through both paths
on two fresh databases of the same store; the outcomes, the stored events (bytes, topics,
versions, positions), the inbox, the heads, the quarantine, the states and the anomalies must
be the same. Two things differ by design and are compared otherwise: the recording time (the
pipeline is given the reference's own event timestamps), and the sealed identifiers (random
keys and nonces: compared once unsealed).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.audit import Auditor
from domain.ledger import Ledger, Outcome
from infrastructure.retrying import ConflictAttempts
from infrastructure.settings import Settings
from infrastructure.wiring import open_ledger
from tests.conftest import BACKENDS, PostgresServer, generated
from tests.oracle import membership_states
from tests.reference_recording import record_with_aggregates

RECEIVED = itertools.count(1_800_000_000_000_000, 1_000)
SEALED = re.compile(rb'"identifiers":("v1\.[^"]*"|null)')


class Twins:
    """A reference ledger and a pipeline ledger on two fresh databases of one store."""

    def __init__(self, reference: Ledger, pipeline: Ledger, clock: deque[datetime]) -> None:
        self.reference = reference
        self.pipeline = pipeline
        self.clock = clock


@pytest.fixture(params=BACKENDS)
def twins(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Twins]:
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / 'reference.db'}", f"sqlite:///{tmp_path / 'pipeline.db'}"]
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        urls = [server.create(), server.create()]
    clock: deque[datetime] = deque()
    with open_ledger(Settings(db=urls[0])) as reference, open_ledger(Settings(db=urls[1])):
        # The pipeline ledger is given the reference's recording times, one per event.
        pipeline = Ledger(
            env=Settings(db=urls[1]).eventsourcing_env(),
            clock=clock.popleft,
            attempts=ConflictAttempts(),
        )
        try:
            yield Twins(reference, pipeline, clock)
        finally:
            pipeline.close()


@st.composite
def deliveries(draw: st.DrawFn) -> list[list[bytes]]:
    """A generated stream (few memberships, so late events and heads are common), shuffled
    within a window, with redeliveries (some reformatted), cut into batches."""
    count = draw(st.integers(min_value=5, max_value=40))
    payloads = generated(
        count,
        seed=draw(st.integers(0, 2**32)),
        memberships=draw(st.integers(1, 6)),
        malformed_rate=0.05,
        reorder_window=1,  # shuffled here instead
    )
    rng = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(0, 8))):
        again = rng.choice(payloads)
        if rng.random() < 0.5:
            with contextlib.suppress(ValueError):
                again = json.dumps(json.loads(again), indent=1).encode()
        payloads.insert(rng.randrange(len(payloads) + 1), again)
    window = draw(st.integers(1, 12))
    for start in range(0, len(payloads), window):
        part = payloads[start : start + window]
        rng.shuffle(part)
        payloads[start : start + window] = part
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(payloads) - 1)), max_size=6)))
    edges = [0, *cuts, len(payloads)]
    return [payloads[a:b] for a, b in itertools.pairwise(edges) if payloads[a:b]]


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=deliveries())
def test_the_pipeline_records_what_the_aggregates_record(
    twins: Twins, batches: list[list[bytes]]
) -> None:
    for batch in batches:
        received = next(RECEIVED)
        # The reference records the batch through aggregates and the library's mapper...
        expected = record_with_aggregates(twins.reference, batch, received_at_us=received)
        twins.clock.extend(_timestamps(twins.reference, expected))
        # ...and the pipeline, the same batch: the same outcome for every payload...
        outcomes = twins.pipeline.receive(batch, received_at_us=received)
        assert [replace(o, position=None) for o in outcomes] == [
            replace(o, position=None) for o in expected
        ]
        assert not twins.clock
        # ...its events logged in arrival order (the reference logs them per membership).
        positions = [o.position for o in outcomes if o.status == "recorded"]
        assert positions == sorted(positions)
        assert all(isinstance(p, int) for p in positions)
    # Then both stores hold the same rows, and the pipeline's hash chains verify.
    assert _stored(twins.pipeline) == _stored(twins.reference)
    assert list(membership_states(twins.pipeline)) == list(membership_states(twins.reference))
    assert Auditor(twins.pipeline.store).verify() == []


def _timestamps(ledger: Ledger, outcomes: list[Outcome]) -> list[datetime]:
    """The recording times of the reference's events, in arrival order."""
    return [
        datetime.fromisoformat(json.loads(n.state)["timestamp"]["_data_"])
        for o in outcomes
        if o.position is not None
        for n in ledger.recorder.select_notifications(start=o.position, limit=1)
    ]


def _stored(ledger: Ledger) -> dict[str, Any]:
    """Everything the write path stores, by membership and version, but positions and the
    hashes over sealed identifiers (the pipeline's chains are verified instead)."""
    events = []
    logged = ledger.recorder.select_notifications(start=1, limit=100_000)
    for n in sorted(logged, key=lambda n: (n.originator_id, n.originator_version)):
        state = json.loads(n.state)
        opened = ledger.store.unseal(state["org_id"], state["customer_id"], state["identifiers"])
        events.append(
            (n.originator_id, n.originator_version, n.topic, SEALED.sub(b"", n.state), opened)
        )
    query = ledger.recorder.query  # type: ignore[attr-defined]
    return {
        "events": events,
        "inbox": query(
            "SELECT originator_id, originator_version, org_id, customer_id, partner_program_id, "
            "fingerprint, event_id, occurred_at_ms, recorded_at_us FROM ledger_inbox "
            "ORDER BY originator_id, originator_version"
        ),
        "heads": query(
            "SELECT originator_id, originator_version, head FROM ledger_heads ORDER BY 1"
        ),
        "quarantine": query(
            "SELECT id, raw, reason, detail, received_at_us, last_received_at_us, "
            "times_received FROM ledger_quarantine ORDER BY id"
        ),
        "keys": query(
            "SELECT org_id, customer_id, key IS NULL AS forgotten FROM ledger_customer_keys "
            "ORDER BY 1, 2"
        ),
    }
