"""What one batch of catch-up or rebuild work is, as the runner computes it: each touched
membership folded from its stored events, and the rows and dead letters a view gets from that."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import NamedTuple, cast
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.errors import RebuildError
from domain.membership import MembershipKey, MembershipState, PartnerMembership, fold_state
from projections.log import Stream
from projections.store import DeadLetter, Generation, Row
from projections.views import View

Decode = Callable[[StoredEvent], object]


class Folded(NamedTuple):
    """One membership as the views see it: its fold, its last position, its events."""

    state: MembershipState
    position: int
    events: list[PartnerMembership.Recorded]


@dataclasses.dataclass(frozen=True)
class Batch:
    """Catch-up work after a position: how many notifications, the last one's position, the
    positions each touched membership has in it, and each one's fold."""

    size: int
    end: int
    touched: dict[UUID, list[int]]
    folded: dict[UUID, Folded | Exception | None]


def fold(decode: Decode, stream: Stream) -> Folded | None:
    """A membership's state from its stored events, the position of its last one, and the
    events themselves (for views that count them)."""
    events = [cast(PartnerMembership.Recorded, decode(stored)) for _, stored in stream]
    if not events:
        return None
    first = events[0]
    key = MembershipKey(first.org_id, first.customer_id, first.partner_program_id)
    state = fold_state(key, events)
    return Folded(state, max(position for position, _ in stream), events)


def fold_touched(
    decode: Decode, touched: dict[UUID, list[int]], streams: dict[UUID, Stream]
) -> dict[UUID, Folded | Exception | None]:
    """Each touched membership's fold, or the error its fold raised."""
    folded: dict[UUID, Folded | Exception | None] = {}
    for membership_id in touched:
        try:
            folded[membership_id] = fold(decode, streams.get(membership_id, []))
        except Exception as error:
            folded[membership_id] = error
    return folded


def changes(
    view: View, batch: Batch, *, strict: bool
) -> tuple[list[str], list[Row], list[DeadLetter]]:
    """What a batch does to one view: the memberships whose rows it replaces, their new rows,
    and a dead letter per position of a membership it cannot project (with ``strict``, a
    rebuild's: `RebuildError` instead)."""
    rows: list[Row] = []
    letters: list[DeadLetter] = []
    replaced: list[str] = []
    for membership_id, positions in batch.touched.items():
        try:
            folded = batch.folded[membership_id]
            if isinstance(folded, Exception):
                raise folded
            if folded is not None:
                rows.extend(view.membership_rows(membership_id, *folded))
            replaced.append(str(membership_id))
        except Exception as error:
            if strict:
                raise RebuildError(
                    f"view {view.name}: cannot project membership {membership_id} at "
                    f"position {positions[0]}: {type(error).__name__}: {error}"
                ) from error
            letters.extend(
                DeadLetter(p, str(membership_id), f"{type(error).__name__}: {error}")
                for p in positions
            )
    return replaced, rows, letters


def built_rows(
    decode: Decode,
    builds: Sequence[tuple[View, Generation]],
    stream: Stream,
    rows: dict[str, list[Row]],
) -> None:
    """A rebuild's rows of one membership (its whole stream), added to each build's rows;
    `RebuildError` if it cannot be projected."""
    membership_id = cast(UUID, stream[0][1].originator_id)
    try:
        folded = fold(decode, stream)
        if folded is None:
            return
        for view, new in builds:
            rows[new.table].extend(view.membership_rows(membership_id, *folded))
    except Exception as error:
        names = ", ".join(view.name for view, _ in builds)
        raise RebuildError(
            f"view {names}: cannot project membership {membership_id} (positions "
            f"{stream[0][0]}..{stream[-1][0]}): {type(error).__name__}: {error}"
        ) from error
