"""The period history's count (`Chronicle.count_changed`, the CLI's progress total): the
database counts the memberships a window holds, and the count is the number of memberships
`Chronicle.changes` goes through, for every window, on both stores."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from domain.history import Chronicle
from domain.ledger import Ledger
from tests.conftest import generated


def _instant(epoch_us: int) -> datetime:
    return datetime.fromtimestamp(epoch_us / 1e6, tz=UTC)


def test_the_count_of_a_window_is_the_number_of_memberships_it_lists(ledger: Ledger) -> None:
    payloads = generated(600, seed=19, orgs=2)
    for start in range(0, len(payloads), 50):  # twelve commits: recording times to cut from
        ledger.receive(payloads[start : start + 50])
    spans = ledger.store.query(  # type: ignore[attr-defined]
        "SELECT org_id, partner_program_id, MIN(recorded_at_us) AS first, "
        "MAX(recorded_at_us) AS last FROM ledger_inbox GROUP BY org_id, partner_program_id"
    )
    rng = random.Random(3)
    windows: list[dict[str, Any]] = []
    for span in spans:
        for program in (None, span["partner_program_id"]):
            cuts = [(span["first"], span["last"])]  # the whole span, and random windows in it
            cuts += [
                tuple(sorted(rng.randint(span["first"], span["last"]) for _ in range(2)))
                for _ in range(3)
            ]
            windows += [
                {"org_id": span["org_id"], "partner_program_id": program}
                | {"start": _instant(start), "end": _instant(end)}
                for start, end in cuts
            ]
    before = _instant(min(span["first"] for span in spans) - 10_000_000)
    windows.append(
        {"org_id": spans[0]["org_id"], "partner_program_id": None}
        | {"start": before, "end": before}
    )
    chronicle = Chronicle(ledger)

    counted = [chronicle.count_changed(**window) for window in windows]

    listed = [
        len({tuple(entry["membership"].values()) for entry in chronicle.changes(**window)})
        for window in windows
    ]
    assert counted == listed
    assert counted[-1] == 0 and max(counted) > 1
