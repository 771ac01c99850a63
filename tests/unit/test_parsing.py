"""Parsing in worker processes: one per core but the recorder's, results in input order."""

from __future__ import annotations

import pytest

from domain.decode import parse_all
from domain.errors import InvalidNotificationError
from domain.notifications import Notification
from infrastructure.parsing import WORTH_A_WORKER, Parser, parse_workers
from tests.conftest import generated


@pytest.mark.parametrize(
    ("cores", "size", "workers"),
    [
        (1, None, 0),  # one core: the recorder parses
        (1, 10 * WORTH_A_WORKER, 0),
        (2, WORTH_A_WORKER - 1, 0),  # too small to be worth a process
        (2, WORTH_A_WORKER, 1),
        (2, None, 1),  # stdin: size unknown
        (4, WORTH_A_WORKER, 3),
        (8, None, 7),
    ],
)
def test_parse_workers_leave_one_core_to_the_recorder(
    cores: int, size: int | None, workers: int
) -> None:
    assert parse_workers(size, cores=cores) == workers


def outcome(result: Notification | InvalidNotificationError) -> tuple[str, str]:
    if isinstance(result, Notification):
        return ("notification", result.fingerprint)
    return (result.reason, result.detail)


def test_several_workers_give_each_batch_back_in_input_order() -> None:
    lines = generated(1_200, seed=5)
    batches = [(lines[start : start + 50], start) for start in range(0, len(lines), 50)]
    with Parser(3) as parser:
        parsed = list(parser.parsed(iter(batches)))
    # Every batch comes back once, in order, with the results parse_all gives in this process.
    assert [(batch, consumed) for batch, consumed, _ in parsed] == batches
    for batch, _, results in parsed:
        assert [outcome(result) for result in results] == [outcome(r) for r in parse_all(batch)]
