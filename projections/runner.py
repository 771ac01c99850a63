"""Keeping views current: catch-up, follow, blue/green rebuild.

- **Catch-up** reads the notification log after a generation's position (``id > last``, never
  assuming contiguous ids), folds each touched membership from its events up to the batch's
  end, and writes the rows and the new position in one transaction. A membership whose events
  cannot be folded goes to the dead-letter table; the view moves on.
- **Rebuild** builds a new generation from position 0 (one ordered pass over the log, one
  membership at a time, set-based writes), catches it up to the head, then switches readers to
  it atomically and drops the old tables. Any error stops a rebuild, and the live view keeps
  answering. A rebuild happens on request, and automatically when a view's schema version in
  code differs from the live generation's.
- **Follow** repeats catch-up whenever the log moves: woken by PostgreSQL's NOTIFY (the event
  store notifies on every write), with a poll as backstop; on SQLite by polling. It holds one
  lock per view, and checks it still holds them before every pass and every write.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from domain.errors import PositionConflictError
from domain.ledger import Ledger
from projections.base import Progress
from projections.batches import Batch, built_rows, changes, fold_touched
from projections.follow import Following
from projections.log import Stream, pages, touched_streams
from projections.rebuild import Rebuilding
from projections.storage import ViewStorage, storage_of
from projections.store import Generation, Row
from projections.views import VIEWS, View

REBUILD_WAIT_SECONDS = 300.0  # for another process's rebuild of the same view to finish


class Projector(Rebuilding, Following):
    """Maintains the views of one ledger: catch-up here, rebuild (`projections.rebuild`) and
    follow (`projections.follow`) in their own modules."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        batch_size: int = 2000,
        rebuild_wait_seconds: float = REBUILD_WAIT_SECONDS,
        storage: ViewStorage | None = None,
    ) -> None:
        super().__init__(
            ledger,
            storage=storage_of(ledger.recorder) if storage is None else storage,
            batch_size=batch_size,
            rebuild_wait_seconds=rebuild_wait_seconds,
        )

    # --- catch-up ------------------------------------------------------------------------

    def catch_up(self, views: Iterable[View] = VIEWS.values()) -> dict[str, int]:
        """Bring every view to the head of the log; rebuild those whose schema changed (in one
        pass over the log for all of them). Returns the number of events each view processed.
        Live views at the same position share each batch's read and fold."""
        views = list(views)
        processed: dict[str, int] = {}
        stale: list[View] = []
        live_views: list[tuple[View, Generation]] = []
        for view in views:
            live = self.store.live(view)
            if live is None or live.schema_version != view.schema_version:
                stale.append(view)
            else:
                live_views.append((view, live))
        if len({live.position for _, live in live_views}) == 1:
            processed |= self._catch_up_together(live_views)
        for view, live in live_views:
            if view.name not in processed:
                processed[view.name] = self._catch_up(view, live, strict=False)
        if stale:
            for name, report in self.rebuild_views(stale, stale_only=True).items():
                processed[name] = int(report["events"])
            for view in stale:  # rebuilt by another process while this one waited
                live = self.store.live(view)
                if view.name not in processed and live is not None:
                    processed[view.name] = self._catch_up(view, live, strict=False)
        return {view.name: processed[view.name] for view in views}

    def _catch_up_together(self, live_views: list[tuple[View, Generation]]) -> dict[str, int]:
        """Advance views that stand at the same position batch by batch, reading and folding
        each batch once for all of them. A view whose position moved under it (another
        catch-up got there first) drops out and is left to `_catch_up`."""
        together = {view.name: (view, generation) for view, generation in live_views}
        totals = dict.fromkeys(together, 0)
        while together:
            position = next(iter(together.values()))[1].position
            batch = self._read_batch(position)
            if batch is None:
                break
            for name, (view, generation) in list(together.items()):
                try:
                    self._write_batch(view, generation, batch, strict=False)
                except PositionConflictError:
                    del together[name], totals[name]
                    continue
                together[name] = (view, dataclasses.replace(generation, position=batch.end))
                totals[name] += batch.size
        return totals

    def _catch_up(
        self, view: View, generation: Generation, *, strict: bool, progress: Progress | None = None
    ) -> int:
        total = 0
        while True:
            try:
                moved, position = self._advance(view, generation, strict=strict)
            except PositionConflictError:
                # Someone else moved it, or it was switched or dropped: look again.
                refreshed = self._generation(view, generation.number)
                if refreshed is None or refreshed.state != generation.state:
                    return total
                generation = refreshed
                continue
            if moved == 0:
                return total
            total += moved
            if progress:
                progress(moved)
            generation = dataclasses.replace(generation, position=position)

    def _advance(self, view: View, generation: Generation, *, strict: bool) -> tuple[int, int]:
        """Apply the next batch after the generation's position; return its size and the
        new position."""
        batch = self._read_batch(generation.position)
        if batch is None:
            return 0, generation.position
        self._write_batch(view, generation, batch, strict=strict)
        return batch.size, batch.end

    def _read_batch(self, position: int) -> Batch | None:
        """The next notifications after ``position``, with each touched membership folded up
        to the last of them (or the error its fold raised); None at the head."""
        notifications = self.log.notifications_after(position, limit=self.batch_size)
        if not notifications:
            return None
        end = notifications[-1][0]
        touched: dict[UUID, list[int]] = {}
        for notification_id, membership_id in notifications:
            touched.setdefault(membership_id, []).append(notification_id)
        streams = touched_streams(self.log, list(touched), up_to=end)
        folded = fold_touched(self.ledger.mapper.to_domain_event, touched, streams)
        return Batch(len(notifications), end, touched, folded)

    def _write_batch(
        self, view: View, generation: Generation, batch: Batch, *, strict: bool
    ) -> None:
        """One batch into one view, in one transaction guarded by the expected position."""
        self._check_locks()
        replaced, rows, letters = changes(view, batch, strict=strict)
        self.store.apply(
            view,
            generation,
            expected_position=generation.position,
            new_position=batch.end,
            replaced=replaced,
            rows=rows,
            dead_letters=letters,
            require_state=generation.state,
        )

    # --- rebuild's one pass over the log ---------------------------------------------------

    def _build(
        self, builds: Sequence[tuple[View, Generation]], up_to: int, progress: Progress | None
    ) -> int:
        """One ordered pass over the log up to ``up_to``: fold each membership once, give its
        state to every view being built, write rows in large set-based batches."""
        rows: dict[str, list[Row]] = {new.table: [] for _, new in builds}
        stream: Stream = []
        count = 0
        for page in pages(self.log, up_to=up_to, size=5000):
            for position, stored in page:
                if stream and stream[-1][1].originator_id != stored.originator_id:
                    built_rows(self.ledger.mapper.to_domain_event, builds, stream, rows)
                    stream = []
                stream.append((position, stored))
            count += len(page)
            if progress:
                progress(len(page))
            self._flush(builds, rows, at_least=5000)
        if stream:
            built_rows(self.ledger.mapper.to_domain_event, builds, stream, rows)
        self._flush(builds, rows, at_least=1)
        self._check_locks()
        for _, new in builds:
            self.store.set_position(new, up_to)
        return count

    def _flush(
        self,
        builds: Sequence[tuple[View, Generation]],
        rows: dict[str, list[Row]],
        *,
        at_least: int,
    ) -> None:
        for view, new in builds:
            if len(rows[new.table]) >= at_least:
                self._check_locks()
                self.store.bulk_load(view, new, rows[new.table])
                rows[new.table] = []

    # --- status --------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """Per view: live generation, schema versions, position, lag, dead letters."""
        head = self.last_position()
        report = []
        for view in VIEWS.values():
            live = self.store.live(view)
            position = live.position if live else 0
            report.append(
                {
                    "view": view.name,
                    "generation": live.number if live else None,
                    "schema_version": live.schema_version if live else None,
                    "code_schema_version": view.schema_version,
                    "position": position,
                    "head": head,
                    "lag_events": max(head - position, 0),
                    "oldest_unprocessed_age_seconds": self._age_after(position),
                    "dead_letters": len(self.store.dead_letters(view)),
                }
            )
        return report

    def _age_after(self, position: int) -> float | None:
        age = self.log.oldest_recorded_after(position)
        return None if age is None else round(max(time.time() - age / 1e6, 0.0), 3)
