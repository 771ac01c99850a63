"""The webhook's group commit (`infrastructure.http.writer`) on a real ledger: after a group of
several, the writer waits for as many new deliveries as it answered, so the senders it just
answered join the next group instead of taking turns with the others; after a group of one it
does not wait."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from domain.ledger import Ledger
from domain.services import Recording
from infrastructure.http.writer import GroupCommitWriter
from tests.conftest import generated

TIMEOUT = 10.0  # well below the writer's wait below: a delivery held by it would fail


def committed_groups(
    ledger: Ledger, first: Sequence[bytes], then: Sequence[bytes], *, group_wait: float
) -> list[int]:
    """The sizes of the groups committed when ``first`` arrive together and, once they are
    answered, ``then`` arrive one by one (each queued before the next is sent)."""
    sizes: list[int] = []

    async def scenario() -> None:
        writer = GroupCommitWriter(
            Recording(ledger).record,
            group_wait=group_wait,
            on_group=lambda size, seconds: sizes.append(size),
        )
        writer.start()
        try:
            outcomes = await asyncio.gather(*(writer.submit(p, timeout=TIMEOUT) for p in first))
            assert all(outcome.status == "recorded" for outcome in outcomes)
            waiting = []
            for payload in then:
                for _ in range(5):  # let the writer take what is queued
                    await asyncio.sleep(0)
                waiting.append(asyncio.ensure_future(writer.submit(payload, timeout=TIMEOUT)))
            outcomes = await asyncio.gather(*waiting)
            assert all(outcome.status == "recorded" for outcome in outcomes)
        finally:
            await writer.close(timeout=TIMEOUT)

    asyncio.run(scenario())
    return sizes


def test_the_senders_of_a_group_are_committed_together_in_their_next_group(
    ledger: Ledger,
) -> None:
    # Given three senders whose deliveries arrive together, and a writer that may wait
    payloads = generated(6, seed=5)
    # When each sends its next delivery once answered, one after the other
    sizes = committed_groups(ledger, payloads[:3], payloads[3:], group_wait=60.0)
    # Then the writer waited for all three: one group of three, then one of three
    assert sizes == [3, 3]


def test_without_the_wait_the_next_deliveries_take_turns(ledger: Ledger) -> None:
    # Given the same senders and a writer that never waits
    payloads = generated(6, seed=5)
    # When each sends its next delivery once answered, one after the other
    sizes = committed_groups(ledger, payloads[:3], payloads[3:], group_wait=0.0)
    # Then the first of them is committed alone while the others are still on their way
    assert sizes[:2] == [3, 1]
    assert sum(sizes) == 6


def test_a_lone_delivery_after_a_group_of_one_is_committed_without_waiting(
    ledger: Ledger,
) -> None:
    # Given a writer that would wait a minute after a group of several
    payloads = generated(2, seed=7)
    # When one delivery arrives, then, once it is answered, another
    sizes = committed_groups(ledger, payloads[:1], payloads[1:], group_wait=60.0)
    # Then each is committed at once (a wait would have failed its submit after 10 s)
    assert sizes == [1, 1]
