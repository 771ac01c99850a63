"""Blue/green rebuilds: a new generation of each view built beside the live one from one pass
over the log, caught up to the head, compared, then switched to atomically (or, for a
``--diff``, dropped). Any error stops a rebuild, and the live view keeps answering."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from projections.base import Progress, RunnerBase
from projections.locks import LockSet
from projections.store import Generation
from projections.views import View


class Rebuilding(RunnerBase):
    """The rebuild part of a projector; its one pass over the log (`_build`) is the
    runner's."""

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

    def _new_generation(self, view: View) -> Generation:
        for orphan in self.store.generations(view):
            # Left by a rebuild that was killed: before its switch (building), or after it,
            # before it dropped the generation it had replaced (retired; no reader's).
            if orphan.state in ("building", "retired"):
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

    def _compare(self, view: View, new: Generation) -> dict[str, Any]:
        live = self.store.live(view)
        if live is None:
            return {"view": view.name, "from_generation": None, "to_generation": new.number}
        # Compare at the same position: bring the live generation to where the new one is.
        self._catch_up(view, live, strict=False)
        live = self.store.live(view) or live
        return self.store.differences(view, live, new)

    def _build(
        self, builds: Sequence[tuple[View, Generation]], up_to: int, progress: Progress | None
    ) -> int:
        raise NotImplementedError
