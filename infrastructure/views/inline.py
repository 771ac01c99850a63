"""The views updated inline, in the ledger's write transaction (`projections.inline` says
when and why): the recorder calls `InlineViews.write` on its transaction's cursor once the
batch's events have their notification ids, with the log's last committed position before
them, read under the library's table lock."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Generic
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
# PostgreSQL): the webhook's small groups keep their one round trip per view.
BULK_MEMBERSHIPS = 100


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
    ) -> list[str]:
        """Move each view at ``previous`` (the log's last position before this batch, read
        under the table lock) to the batch's last notification id with the batch's rows, each
        in a savepoint; returns the names of the views moved. A view whose update fails is
        rolled back to its savepoint and left to catch-up."""
        if not notification_ids or not folded:
            return []
        live = self._live(cursor)
        membership_ids = [_uuid(event.originator_id) for event in stored_events]
        positions = last_positions(membership_ids, notification_ids)
        moved = []
        for view in self.views:
            generation = live.get(view.name)
            if generation is None or generation.schema_version != view.schema_version:
                continue  # no view yet, or one to rebuild: catch-up's work
            if generation.position != previous:
                continue  # behind: catch-up's work
            try:
                with self.store.savepoint(cursor, bulk=len(folded) >= BULK_MEMBERSHIPS):
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

    def _write(
        self,
        cursor: C,
        view: View,
        generation: Generation,
        previous: int,
        positions: dict[UUID, int],
        folded: Sequence[FoldedRow],
    ) -> bool:
        store = self.store
        end = max(positions.values())
        if not store.move(
            cursor, view, generation, expected=previous, new=end, require_state="live"
        ):
            return False  # switched or moved since it was read
        rows = batch_rows(view, folded, positions)
        if view.tally is None:
            store.replace(cursor, view, generation, [str(f.membership_id) for f in folded], rows)
        elif rows:
            store.add(cursor, view, generation, rows)
        return True

    def _live(self, cursor: C) -> dict[str, Generation]:
        cursor.execute(
            "SELECT view, generation, schema_version, state, position "
            "FROM projection_generations WHERE state = 'live'"
        )
        return {
            row["view"]: Generation(
                row["view"], row["generation"], row["schema_version"], row["state"], row["position"]
            )
            for row in cursor.fetchall()
        }


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)
