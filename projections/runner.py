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

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, cast
from uuid import UUID

from domain.errors import (
    LockHeldError,
    LockLostError,
    PositionConflictError,
    RebuildError,
)
from domain.ledger import Ledger
from domain.membership import MembershipKey, MembershipState, PartnerMembership, fold_state
from projections.locks import LockSet
from projections.log import Stream, pages, touched_streams
from projections.storage import ViewStorage, storage_of
from projections.store import DeadLetter, Generation, Row
from projections.views import VIEWS, View

Progress = Callable[[int], None]
REBUILD_WAIT_SECONDS = 300.0  # for another process's rebuild of the same view to finish


def _no_check() -> None:
    return None


class _Folded(NamedTuple):
    """One membership as the views see it: its fold, its last position, its events."""

    state: MembershipState
    position: int
    events: list[PartnerMembership.Recorded]


@dataclasses.dataclass(frozen=True)
class _Batch:
    """Catch-up work after a position: how many notifications, the last one's position, the
    positions each touched membership has in it, and each one's fold."""

    size: int
    end: int
    touched: dict[UUID, list[int]]
    folded: dict[UUID, _Folded | Exception | None]


class Projector:
    """Maintains the views of one ledger."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        batch_size: int = 2000,
        rebuild_wait_seconds: float = REBUILD_WAIT_SECONDS,
        storage: ViewStorage | None = None,
    ) -> None:
        self.ledger = ledger
        self.storage = storage_of(ledger.recorder) if storage is None else storage
        self.store = self.storage.store
        self.log = self.storage.log
        self.batch_size = batch_size
        self.rebuild_wait_seconds = rebuild_wait_seconds
        # Called before every write to a view: raises `LockLostError` when a lock that
        # guards the writing is gone (see `_guarded`).
        self._check_locks: Callable[[], None] = _no_check
        self._stopping: threading.Event | None = None  # a follower's stop: ends lock waits

    def last_position(self) -> int:
        """The position of the last event in the log (0 for an empty log)."""
        return self.log.last_position()

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

    def _generation(self, view: View, number: int) -> Generation | None:
        return next((g for g in self.store.generations(view) if g.number == number), None)

    def _advance(self, view: View, generation: Generation, *, strict: bool) -> tuple[int, int]:
        """Apply the next batch after the generation's position; return its size and the
        new position."""
        batch = self._read_batch(generation.position)
        if batch is None:
            return 0, generation.position
        self._write_batch(view, generation, batch, strict=strict)
        return batch.size, batch.end

    def _read_batch(self, position: int) -> _Batch | None:
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
        folded: dict[UUID, _Folded | Exception | None] = {}
        for membership_id in touched:
            try:
                folded[membership_id] = self._fold_stream(streams.get(membership_id, []))
            except Exception as error:
                folded[membership_id] = error
        return _Batch(len(notifications), end, touched, folded)

    def _write_batch(
        self, view: View, generation: Generation, batch: _Batch, *, strict: bool
    ) -> None:
        """One batch into one view, in one transaction guarded by the expected position."""
        self._check_locks()
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

    def _fold_stream(self, stream: Stream) -> _Folded | None:
        """A membership's state from its stored events, the position of its last one, and
        the events themselves (for views that count them)."""
        to_domain_event = self.ledger.mapper.to_domain_event
        events = [cast(PartnerMembership.Recorded, to_domain_event(stored)) for _, stored in stream]
        if not events:
            return None
        first = events[0]
        key = MembershipKey(first.org_id, first.customer_id, first.partner_program_id)
        state = fold_state(key, events)
        return _Folded(state, max(position for position, _ in stream), events)

    # --- rebuild -------------------------------------------------------------------------

    def rebuild(
        self, view: View, *, diff_only: bool = False, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Build a new generation of ``view`` beside the live one, then switch to it (or,
        with ``diff_only``, report what would change and discard it)."""
        return self.rebuild_views([view], diff_only=diff_only, progress=progress)[view.name]

    def rebuild_views(
        self,
        views: Sequence[View],
        *,
        diff_only: bool = False,
        progress: Progress | None = None,
        stale_only: bool = False,
    ) -> dict[str, dict[str, Any]]:
        """`rebuild` several views from one pass over the log: reading and decoding the log
        is most of a rebuild's work, and every view needs the same folded states.

        One rebuild per view at a time: this waits up to ``rebuild_wait_seconds`` for another
        one to finish (then `LockHeldError`). With ``stale_only``, views that are no longer
        stale once the locks are held (that rebuild was of them) are left out."""
        started = time.perf_counter()
        locks = LockSet(
            self.storage.locks,
            [f"rebuild-{view.name}" for view in views],
            timeout=self.rebuild_wait_seconds,
            cancel=self._stopping,
        )
        locks.take()
        with contextlib.ExitStack() as held:
            held.callback(locks.release)
            held.enter_context(self._guarded(locks.check))
            if stale_only:
                views = [view for view in views if self._stale(view)]
                if not views:
                    return {}
            unfinished: list[Generation] = []
            try:
                builds = []
                for view in views:
                    builds.append((view, self._new_generation(view)))
                    unfinished.append(builds[-1][1])
                events = self._build(builds, self.last_position(), progress)
                reports = {}
                for view, new in builds:
                    report = self._finish(view, new, diff_only=diff_only, progress=progress)
                    unfinished.remove(new)
                    report["events"] = events + report.pop("caught_up")
                    report["seconds"] = round(time.perf_counter() - started, 3)
                    reports[view.name] = report
                return reports
            except BaseException:
                for new in unfinished:
                    self.store.drop(new)
                raise

    def _stale(self, view: View) -> bool:
        live = self.store.live(view)
        return live is None or live.schema_version != view.schema_version

    @contextlib.contextmanager
    def _guarded(self, check: Callable[[], None]) -> Iterator[None]:
        """Within the block, every write to a view first runs ``check`` too."""
        outer = self._check_locks

        def both() -> None:
            outer()
            check()

        self._check_locks = both
        try:
            yield
        finally:
            self._check_locks = outer

    def _new_generation(self, view: View) -> Generation:
        for orphan in self.store.generations(view):
            if orphan.state == "building":  # left by a rebuild that was killed
                self.store.drop(orphan)
        return self.store.create_generation(view)

    def _finish(
        self, view: View, new: Generation, *, diff_only: bool, progress: Progress | None
    ) -> dict[str, Any]:
        """Catch a built generation up to the head, compare it with the live one, then switch
        to it (or drop it, with ``diff_only``)."""
        new = self._generation(view, new.number) or new
        caught_up = self._catch_up(view, new, strict=True, progress=progress)
        new = self._generation(view, new.number) or new
        report = self._compare(view, new) | {"caught_up": caught_up, "position": new.position}
        if diff_only:
            self.store.drop(new)
            return report | {"switched": False}
        self._check_locks()
        previous = self.store.switch(view, new)
        if previous is not None:
            self.store.drop(previous)
        return report | {"switched": True}

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
                    self._strict_rows(builds, stream, rows)
                    stream = []
                stream.append((position, stored))
            count += len(page)
            if progress:
                progress(len(page))
            self._flush(builds, rows, at_least=5000)
        if stream:
            self._strict_rows(builds, stream, rows)
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

    def _strict_rows(
        self,
        builds: Sequence[tuple[View, Generation]],
        stream: Stream,
        rows: dict[str, list[Row]],
    ) -> None:
        membership_id = cast(UUID, stream[0][1].originator_id)
        try:
            folded = self._fold_stream(stream)
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

    def _compare(self, view: View, new: Generation) -> dict[str, Any]:
        live = self.store.live(view)
        if live is None:
            return {"view": view.name, "from_generation": None, "to_generation": new.number}
        # Compare at the same position: bring the live generation to where the new one is.
        self._catch_up(view, live, strict=False)
        live = self.store.live(view) or live
        return self.store.differences(view, live, new)

    # --- follow --------------------------------------------------------------------------

    def follow(
        self,
        stop: threading.Event,
        *,
        backstop_seconds: float = 1.0,
        poll_seconds: float = 0.02,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """Keep every view current until ``stop`` is set. One follower per view: a second
        one gets `LockHeldError` at once.

        The locks can go while the follower runs (an outage or ``pg_terminate_backend`` ends
        the sessions holding them; someone removes the SQLite lock file), so it checks them
        before every pass and every write. One that lost them writes nothing until it has
        taken them again; if another process took them meanwhile, it raises
        `LockHeldError`: that one follows now."""
        report = on_error or (lambda error: None)
        locks = LockSet(self.storage.locks, [f"follow-{name}" for name in VIEWS])
        locks.take()
        waiter = self.storage.waiter(backstop_seconds=backstop_seconds, poll_seconds=poll_seconds)
        self._stopping = stop
        try:
            with waiter, self._guarded(locks.check):
                while not stop.is_set():
                    if not _still_leading(locks, report, self.storage.transient):
                        stop.wait(1.0)  # the database is away: try again, do not die
                        continue
                    try:
                        self.catch_up()
                    except LockLostError as error:
                        with contextlib.suppress(LockLostError):
                            locks.check()  # its own: `_still_leading` says so, takes them again
                            report(error)  # a rebuild's lock: that rebuild stopped
                        continue
                    except (PositionConflictError, RebuildError, LockHeldError) as error:
                        if not stop.is_set():  # LockHeldError: another process rebuilds
                            report(error)
                    except self.storage.transient as error:
                        # The database is away for a moment: say so and try again. Any other
                        # error is a bug, and surfaces.
                        report(error)
                        stop.wait(1.0)
                    waiter.wait(stop)
        finally:
            self._stopping = None
            locks.release()

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


def _still_leading(
    locks: LockSet, report: Callable[[Exception], None], transient: tuple[type[Exception], ...]
) -> bool:
    """True while the follower holds its locks. After it lost them: take them again (True),
    or False while the database cannot be reached, or `LockHeldError` when another process
    holds them now."""
    try:
        locks.check()
        return True
    except LockLostError as lost:
        if locks.held:
            report(LockLostError(f"{lost}; not writing until the lock is taken again"))
        locks.release()
    try:
        locks.take()
    except LockHeldError as taken:
        raise LockHeldError(
            f"this follower lost its locks and another process has taken them since ({taken}); "
            "that one follows the log now"
        ) from None
    except transient as error:
        report(error)
        return False
    return True
