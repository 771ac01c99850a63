"""The views updated inline, in the ledger's write transaction (`projections.inline` says
when and why): the recorder calls `InlineViews.write` on its transaction's cursor once the
batch's events have their notification ids, with the log's last committed position before
them, read under the library's table lock."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Generic
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.errors import first_line
from domain.rows import FoldedRow
from infrastructure.views.rows import C
from infrastructure.views.store import SQLViewStore
from projections.inline import batch_rows, last_positions
from projections.store import Generation
from projections.views import VIEWS, View

logger = logging.getLogger("partner_ledger.views")
# From this many changed memberships a batch's view rows are a bulk write (COPY on
# PostgreSQL): the webhook's small groups keep their few round trips.
BULK_MEMBERSHIPS = 100
LIVE = (
    "SELECT view, generation, schema_version, state, position "
    "FROM projection_generations WHERE state = 'live'"
)


class InlineViews(Generic[C]):
    """The views a write transaction brings along: those whose live generation stands at the
    log's position before the batch."""

    def __init__(self, store: SQLViewStore[C], views: Iterable[View] = VIEWS.values()) -> None:
        self.store = store
        self.views = list(views)

    def write(
        self,
        cursor: C,
        *,
        previous: int,
        stored_events: Sequence[StoredEvent],
        notification_ids: Sequence[int],
        folded: Sequence[FoldedRow],
        live: dict[str, Generation] | None = None,
    ) -> list[str]:
        """Move each view at ``previous`` (the log's last position before this batch, read
        under the table lock) to the batch's last notification id with the batch's rows: all
        in one savepoint, or if that fails each in its own; returns the names of the views
        moved. A view whose update fails is rolled back to its savepoint and left to
        catch-up. ``live``: the live generations (`live_generations` of `LIVE`), when the
        caller read them in the same transaction."""
        if not notification_ids or not folded:
            return []
        if live is None:
            cursor.execute(LIVE)
            live = live_generations(cursor.fetchall())
        membership_ids = [_uuid(event.originator_id) for event in stored_events]
        positions = last_positions(membership_ids, notification_ids)
        due = [
            (view, generation)
            for view in self.views
            if (generation := live.get(view.name)) is not None
            # none yet, one to rebuild, or behind: catch-up's work
            and generation.schema_version == view.schema_version
            and generation.position == previous
        ]
        bulk = len(folded) >= BULK_MEMBERSHIPS
        if len(due) > 1 and self._write_together(cursor, due, previous, positions, folded, bulk):
            return [view.name for view, _ in due]
        moved = []
        for view, generation in due:
            try:
                with self.store.savepoint(cursor, bulk=bulk):
                    if self._write(cursor, view, generation, previous, positions, folded):
                        moved.append(view.name)
            except Exception as error:  # the view stays behind: catch-up writes it, or
                # dead-letters the membership and says why; said here too, so it is not silent
                logger.warning(
                    "the %s view was not updated with the batch (left to catch-up): %s",
                    view.name,
                    first_line(error),
                )
        return moved

    def _write_together(
        self,
        cursor: C,
        due: Sequence[tuple[View, Generation]],
        previous: int,
        positions: dict[UUID, int],
        folded: Sequence[FoldedRow],
        bulk: bool,
    ) -> bool:
        """All the views in one savepoint, nothing to wait for before its end (two round
        trips on PostgreSQL instead of two per view); False, all rolled back, if any of them
        fails or moved meanwhile: then each goes on its own, and the one that fails says so."""
        try:
            with self.store.savepoint(cursor, bulk=bulk):
                for view, generation in due:
                    self._write(cursor, view, generation, previous, positions, folded, True)
        except Exception:
            return False
        return True

    def _write(
        self,
        cursor: C,
        view: View,
        generation: Generation,
        previous: int,
        positions: dict[UUID, int],
        folded: Sequence[FoldedRow],
        strict: bool = False,
    ) -> bool:
        """The view's rows and position; ``strict``: a view switched or moved since it was
        read fails the savepoint (`SQLRows.move_or_fail`) instead of returning False."""
        store = self.store
        end = max(positions.values())
        if strict:
            store.move_or_fail(
                cursor, view, generation, expected=previous, new=end, require_state="live"
            )
        elif not store.move(
            cursor, view, generation, expected=previous, new=end, require_state="live"
        ):
            return False  # switched or moved since it was read
        rows = batch_rows(view, folded, positions)
        if view.tally is None:
            store.replace(cursor, view, generation, [str(f.membership_id) for f in folded], rows)
        elif rows:
            store.add(cursor, view, generation, rows)
        return True


def live_generations(rows: Iterable[Mapping[str, Any]]) -> dict[str, Generation]:
    """The rows of `LIVE`, by view name."""
    return {
        row["view"]: Generation(
            row["view"], row["generation"], row["schema_version"], row["state"], row["position"]
        )
        for row in rows
    }


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)
