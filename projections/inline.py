"""The views updated inline: in the write transaction of the batch that changes them.

A batch that records events hands the recorder each changed membership's folded state
(`domain.rows.FoldedRow`). Under the library's table lock, the recorder reads the log's last
committed position before the batch; each view whose live generation stands exactly there
(and has the schema version of the code) gets the batch's rows, and its position moves to the
batch's last notification, in the same transaction as the events. Any other generation is
left to catch-up as before: a view that is behind, one whose schema changed, and a rebuild's
new generation (``building``), which its rebuild catches up and switches to itself.

The views are written together in one savepoint; if that fails, each is written in a
savepoint of its own: if its update fails, the recorder rolls back to that savepoint, the
events still commit, and that view stays behind for catch-up (which
writes dead letters as always). A follower woken by the commit then finds nothing to do.

The rows are exactly catch-up's (`View.membership_rows` of the same fold), so inline rows,
catch-up rows and rebuilt rows are equal; a view that counts events (`View.tally`) gets the
counts of the batch's events, which add to its stored counts whatever their order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

from domain.rows import FoldedRow
from projections.store import Row
from projections.views import View


def last_positions(
    membership_ids: Sequence[UUID], notification_ids: Sequence[int]
) -> dict[UUID, int]:
    """Each membership's last position in a batch, given its events' memberships and
    positions in recording order."""
    last: dict[UUID, int] = {}
    for membership_id, position in zip(membership_ids, notification_ids, strict=True):
        last[membership_id] = max(position, last.get(membership_id, position))
    return last


def batch_rows(view: View, folded: Sequence[FoldedRow], positions: Mapping[UUID, int]) -> list[Row]:
    """The rows ``view`` gets from a batch: each changed membership's rows from its fold (for
    a view with a tally, counting only the batch's events)."""
    return [
        row
        for item in folded
        for row in view.membership_rows(
            item.membership_id, item.state, positions[item.membership_id], item.recorded
        )
    ]
