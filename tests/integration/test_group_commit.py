"""The webhook's group commit (`infrastructure.http.writer`) on a real ledger: after a group of
several, the writer waits for as many new deliveries as it answered, so the senders it just
answered join the next group instead of taking turns with the others; after a group of one it
does not wait."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

from domain.ledger import Ledger, Outcome
from domain.services import Recording
from infrastructure.http.writer import GroupCommitWriter, WriterUnavailableError
from tests.conftest import generated

TIMEOUT = 10.0  # well below the writer's wait below: a delivery held by it would fail


async def taken(writer: GroupCommitWriter) -> None:
    """Once the writer has taken every queued payload into a group (at most ``TIMEOUT``). A
    fixed number of loop turns was not always enough on a loaded machine: the writer may
    still be on its way back from the last commit (its thread signalled the outcomes, not yet
    its own end) while the next payloads are queued, and then it takes them together."""
    deadline = time.monotonic() + TIMEOUT
    while writer.queued and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    assert not writer.queued, "the writer took nothing for 10 s"


def committed_groups(
    ledger: Ledger,
    first: Sequence[bytes],
    then: Sequence[bytes],
    *,
    group_wait: float,
    each_taken: bool = False,
) -> list[int]:
    """The sizes of the groups committed when ``first`` arrive together and, once they are
    answered, ``then`` arrive one by one (each queued before the next is sent; with
    ``each_taken``, each taken by the writer before the next is sent)."""
    sizes: list[int] = []

    async def scenario() -> None:
        writer = GroupCommitWriter(
            Recording(ledger).record,
            group_wait=group_wait,
            on_group=lambda outcomes, seconds: sizes.append(len(outcomes)),
        )
        writer.start()
        try:
            outcomes = await asyncio.gather(*(writer.submit(p, timeout=TIMEOUT) for p in first))
            assert all(outcome.status == "recorded" for outcome in outcomes)
            waiting = []
            for payload in then:
                waiting.append(asyncio.ensure_future(writer.submit(payload, timeout=TIMEOUT)))
                if each_taken:  # the writer has taken it before the next is sent
                    await asyncio.sleep(0)  # the submit runs: its payload is queued
                    await taken(writer)
                else:  # let the writer take what is queued, if it would
                    for _ in range(5):
                        await asyncio.sleep(0)
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
    sizes = committed_groups(ledger, payloads[:3], payloads[3:], group_wait=0.0, each_taken=True)
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


def test_a_delivery_not_confirmed_in_time_fails_and_one_not_yet_taken_is_skipped(
    ledger: Ledger,
) -> None:
    # Given a writer whose first commit is held until released, on a real ledger
    first, late, after = generated(3, seed=5)
    release = threading.Event()
    received: list[list[bytes]] = []

    def held(payloads: Sequence[bytes]) -> list[Outcome]:
        received.append(list(payloads))
        if len(received) == 1:
            release.wait(TIMEOUT)
        return Recording(ledger).record(payloads)

    async def scenario() -> tuple[BaseException | None, BaseException | None, Outcome]:
        writer = GroupCommitWriter(held)
        writer.start()
        try:
            committing = asyncio.ensure_future(writer.submit(first, timeout=0.2))
            await asyncio.sleep(0)  # the submit runs: its payload is queued
            await taken(writer)  # and taken into the held commit
            waiting = asyncio.ensure_future(writer.submit(late, timeout=0.2))
            errors = await asyncio.gather(committing, waiting, return_exceptions=True)
            release.set()
            outcome = await writer.submit(after, timeout=TIMEOUT)
        finally:
            await writer.close(timeout=TIMEOUT)
        first_error, late_error = (e if isinstance(e, BaseException) else None for e in errors)
        return first_error, late_error, outcome

    # When both deliveries' deadlines pass while the first commit is held
    first_error, late_error, outcome = asyncio.run(scenario())
    # Then both senders are told to retry, in one sentence
    for error in (first_error, late_error):
        assert isinstance(error, WriterUnavailableError)
        assert str(error) == "the commit was not confirmed within 0.2 s"
    # and the held commit still went through, the expired delivery never reached a commit,
    # and the writer goes on with the next one
    assert outcome.status == "recorded"
    assert received == [[first], [after]]
    statuses = [o.status for o in Recording(ledger).record([first, late, after])]
    assert statuses == ["duplicate", "recorded", "duplicate"]
